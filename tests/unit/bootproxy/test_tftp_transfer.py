"""The pure TFTP transfer state machine and option negotiation."""

import pytest

from bootproxy.tftp.options import Limits, negotiate
from bootproxy.tftp.packets import Ack, Data, Error, OptionAck, parse_packet
from bootproxy.tftp.transfer import Outcome, ReadTransfer, State

pytestmark = pytest.mark.unit


def _machine(content: bytes, **kw: object) -> ReadTransfer:
    return ReadTransfer(read=lambda off, n: content[off:off + n], size=len(content), **kw)  # type: ignore[arg-type]


def _blocks(datagrams: list[bytes]) -> list[int]:
    out = []
    for d in datagrams:
        p = parse_packet(d)
        assert isinstance(p, Data)
        out.append(p.block)
    return out


def test_lockstep_transfer_with_empty_final_block() -> None:
    m = _machine(b"x" * 1024, blksize=512)
    assert _blocks(m.start()) == [1]
    assert _blocks(m.on_packet(Ack(1))) == [2]
    last = m.on_packet(Ack(2))
    assert parse_packet(last[0]) == Data(3, b"")  # TFTP-2: size multiple of blksize
    assert m.on_packet(Ack(3)) == []
    assert m.state is State.DONE and m.outcome is Outcome.COMPLETE


def test_duplicate_ack_is_never_answered() -> None:
    m = _machine(b"x" * 2000, blksize=512)
    m.start()
    assert _blocks(m.on_packet(Ack(1))) == [2]
    assert m.on_packet(Ack(1)) == []  # Sorcerer's Apprentice (TFTP-7)
    assert m.on_packet(Ack(0)) == []
    assert _blocks(m.on_timeout()) == [2]  # only the timer resends


def test_retry_cap_fails_the_transfer() -> None:
    m = _machine(b"x" * 2000, blksize=512, max_retries=2)
    m.start()
    assert m.on_timeout() and m.on_timeout()
    assert m.on_timeout() == []
    assert m.outcome is Outcome.TIMEOUT


def test_final_block_never_acked_is_not_an_error() -> None:
    m = _machine(b"x" * 10, blksize=512, max_retries=1)
    m.start()
    m.on_timeout()
    m.on_timeout()
    assert m.state is State.DONE and m.outcome is Outcome.FINAL_UNACKED


def test_oack_waits_for_ack_zero() -> None:
    m = _machine(b"x" * 100, blksize=512, oack={"tsize": "100"})
    first = m.start()
    assert parse_packet(first[0]) == OptionAck({"tsize": "100"})
    assert m.on_packet(Ack(5)) == []
    assert parse_packet(m.on_timeout()[0]) == OptionAck({"tsize": "100"})
    assert _blocks(m.on_packet(Ack(0))) == [1]


def test_error_8_after_oack_stops_without_resending() -> None:
    m = _machine(b"x" * 100, oack={"tsize": "100"})
    m.start()
    assert m.on_packet(Error(8, "tsize probe")) == []
    assert m.outcome is Outcome.OPTION_PROBE
    assert m.on_timeout() == []


def test_error_during_data_is_a_client_error() -> None:
    m = _machine(b"x" * 2000, blksize=512)
    m.start()
    assert m.on_packet(Error(0, "disk full")) == []
    assert m.outcome is Outcome.CLIENT_ERROR and m.finished
    assert m.on_timeout() == []


def test_windowsize_resends_from_last_ack_plus_one() -> None:
    m = _machine(b"x" * (512 * 20), blksize=512, windowsize=4)
    assert _blocks(m.start()) == [1, 2, 3, 4]
    assert _blocks(m.on_packet(Ack(4))) == [5, 6, 7, 8]
    # Client lost block 7: it ACKs 6, the server restarts the window at 7.
    assert _blocks(m.on_packet(Ack(6))) == [7, 8, 9, 10]
    assert m.on_packet(Ack(6)) == []
    assert _blocks(m.on_timeout()) == [7, 8, 9, 10]


def test_block_numbers_roll_over_past_65535() -> None:
    m = _machine(b"x" * (8 * 65540), blksize=8, windowsize=8)
    m.start()
    m.acked = m.sent = 65528
    assert _blocks(m.on_packet(Ack(65528))) == []  # duplicate
    out = _blocks(m._window())
    assert out == [65529, 65530, 65531, 65532, 65533, 65534, 65535, 0]
    assert _blocks(m.on_packet(Ack(0))) == [1, 2, 3, 4, 5]
    assert m.acked == 65536


def test_non_ack_packet_gets_error_4() -> None:
    m = _machine(b"abc")
    m.start()
    reply = parse_packet(m.on_packet(Data(1, b"x"))[0])
    assert isinstance(reply, Error) and reply.code == 4
    assert m.outcome is Outcome.ILLEGAL


def test_negotiate_only_known_valid_options() -> None:
    n = negotiate({"blksize": "9000", "tsize": "0", "timeout": "3", "windowsize": "500",
                   "multicast": "", "utimeout": "5"}, 12345, Limits(max_blksize=1468,
                                                                     max_windowsize=64))
    assert n.oack == {"blksize": "1468", "tsize": "12345", "timeout": "3", "windowsize": "64"}
    assert (n.blksize, n.windowsize, n.timeout) == (1468, 64, 3.0)


@pytest.mark.parametrize("opts", [{"blksize": "7"}, {"timeout": "0"}, {"timeout": "256"},
                                  {"windowsize": "0"}, {"blksize": "abc"}, {"tsize": "-1"}])
def test_invalid_option_values_are_left_out(opts: dict[str, str]) -> None:
    n = negotiate(opts, 10, Limits())
    assert n.oack == {}
    assert (n.blksize, n.windowsize) == (512, 1)


def test_smaller_blksize_is_honoured() -> None:
    assert negotiate({"blksize": "512"}, 1, Limits()).oack == {"blksize": "512"}


@pytest.mark.parametrize("windowsize", [1, 4])
def test_prefetch_changes_no_datagram_and_no_count(windowsize: int) -> None:
    """The same events with prefetch() after every send give the same bytes on the wire,
    the same byte count and the same outcome; a prefetched block is never sent early."""
    content = bytes(range(256)) * 20 + b"tail"
    events: list[object] = [Ack(0), Ack(windowsize), Ack(windowsize), "timeout",
                            Ack(2 * windowsize - 1), *[Ack(n) for n in range(2 * windowsize, 12)]]

    def play(prefetch: bool) -> tuple[list[bytes], int, Outcome | None]:
        m = _machine(content, blksize=512, windowsize=windowsize, oack={"blksize": "512"})
        wire = list(m.start())
        for event in events:
            if prefetch:
                m.prefetch()
            wire += m.on_timeout() if event == "timeout" else m.on_packet(event)  # type: ignore[arg-type]
        return wire, m.bytes_sent, m.outcome

    plain, with_prefetch = play(False), play(True)
    assert with_prefetch == plain
    assert plain[2] is Outcome.COMPLETE
