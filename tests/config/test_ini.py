"""The ini reader: comment lines, inline comments, sections, bare keys, first `=` split."""

from uisge.config.ini import parse_ini, strip_inline_comment


def test_inline_comment_after_whitespace_is_stripped():
    assert strip_inline_comment("www-data # Ubuntu系统下默认用户名") == ("www-data", "# Ubuntu系统下默认用户名")
    assert strip_inline_comment("2048\t# tab") == ("2048", "# tab")


def test_hash_without_whitespace_is_part_of_the_value():
    assert strip_inline_comment("a#b") == ("a#b", "")
    assert strip_inline_comment("http://x/#frag") == ("http://x/#frag", "")


def test_comment_lines_and_sections():
    text = "# top\n[other]\nprocesses = 9\n[uwsgi]\n; semi\n  # indented\nprocesses = 2 # two\n[uwsgi]\nthreads=4\n"
    lines, sections = parse_ini(text)
    assert [(ln.key, ln.value, ln.lineno) for ln in lines] == [("processes", "2", 7), ("threads", "4", 9)]
    assert sections == ["other", "uwsgi", "uwsgi"]
    lines, _ = parse_ini(text, "other")
    assert [(ln.key, ln.value) for ln in lines] == [("processes", "9")]


def test_bare_key_is_empty_value_and_split_on_first_equals():
    lines, _ = parse_ini("[uwsgi]\nmaster\nenv = A=B=C\nmaster2 # on\nempty = # nothing\n")
    assert [(ln.key, ln.value) for ln in lines] == [("master", ""), ("env", "A=B=C"), ("master2", ""), ("empty", "")]


def test_crlf_and_blank_lines():
    lines, _ = parse_ini("[uwsgi]\r\n\r\nhttp = :8000\r\n")
    assert [(ln.key, ln.value) for ln in lines] == [("http", ":8000")]
