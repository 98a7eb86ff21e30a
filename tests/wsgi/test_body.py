"""Request bodies: RAM up to the limit, then a temp file written as the bytes arrive."""

from uisge.wsgi.body import BodySink


def test_small_bodies_stay_in_ram():
    sink = BodySink(10)
    sink.write(b"abc")
    sink.write(b"def")
    assert sink.file is None and sink.input().read() == b"abcdef"


def test_past_the_limit_the_body_goes_to_a_file_and_reads_back_whole():
    sink = BodySink(10)
    for piece in (b"0123456", b"789", b"abcdef", b"g" * 1000):
        sink.write(piece)
    assert sink.file is not None and sink.parts == []
    assert sink.input().read() == b"0123456789abcdef" + b"g" * 1000
    sink.discard()
    assert sink.file is None
