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


def test_a_reused_spill_file_never_shows_an_earlier_body():
    big = BodySink(4)
    big.write(b"A" * 5000)
    assert big.input().read() == b"A" * 5000
    big.discard()
    small = BodySink(4)
    small.write(b"bbbbbb")
    assert small.file is not None and small.input().read() == b"bbbbbb"  # not followed by the As
    small.discard()


def test_an_input_the_app_closed_is_not_reused():
    sink = BodySink(1)
    sink.write(b"xyz")
    sink.input().close()
    sink.discard()
    other = BodySink(1)
    other.write(b"abc")
    assert not other.file.closed and other.input().read() == b"abc"
    other.discard()
