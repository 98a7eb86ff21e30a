"""Loading options: uWSGI's spellings and meanings."""


def test_uwsgi_spellings_of_options_its_own_tests_use():
    """Options uWSGI's t/ and tests/ trees pass: known, with uWSGI's meaning (issue 15)."""
    from uisge.config.load import load

    opts = load(["--shared-py-import", "mymod", "--exit-on-reload", "--touch-mules-reload", "m.touch",
                 "--touch-spoolers-reload", "s.touch", "--spooler-external", "/tmp/x", "--pyargv", "a b"],
                first_index=0)
    assert opts.shared_import == ("mymod",) and opts.exit_on_reload
    assert opts.touch_mules_reload == ("m.touch",) and opts.touch_spoolers_reload == ("s.touch",)
    assert opts.spooler_external == ("/tmp/x",) and opts.pyargv == "a b"
    notices = " ".join(m.text for m in load(["--py-call-osafterfork", "--spooler-ordered"], first_index=0).notices())
    assert "os.fork()" in notices and "in order" in notices
