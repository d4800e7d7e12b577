"""Encoders and decoders of the streaming protocols."""

from __future__ import annotations

import struct
import zlib

import pytest

from k8py.kubelet.streams import channels, spdy
from k8py.kubelet.streams.logs import parse_line, parse_time, render


def test_channel_frames():
    assert channels.frame(channels.STDOUT, b"x") == b"\x01x"
    assert channels.split(b"\x02err") == (2, b"err")
    assert channels.close_frame(channels.STDIN) == b"\xff\x00"
    assert channels.parse_resize(b'{"Width":80,"Height":25}') == (80, 25)
    assert channels.parse_resize(b"nonsense") is None
    assert channels.port_prefix(8080) == b"\x90\x1f"      # little-endian, as clients read it
    with pytest.raises(ValueError):
        channels.split(b"")


def test_exit_status_carries_the_code_as_upstream():
    assert channels.exit_status(0) == {"metadata": {}, "status": "Success"}
    failed = channels.exit_status(3, ["sh", "-c", "exit 3"])
    assert failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]


def test_protocol_choice_follows_the_clients_order():
    assert channels.choose_protocol("v5.channel.k8s.io, v4.channel.k8s.io", channels.EXEC_PROTOCOLS) == channels.V5
    assert channels.choose_protocol("v4.channel.k8s.io", channels.EXEC_PROTOCOLS) == channels.V4
    assert channels.choose_protocol("channel.k8s.io", channels.EXEC_PROTOCOLS) == channels.V1
    assert channels.choose_protocol(None, channels.EXEC_PROTOCOLS) is None
    websocket = channels.EXEC_WEBSOCKET_PROTOCOLS
    assert channels.choose_protocol("base64.channel.k8s.io", websocket) == channels.V1_BASE64
    assert channels.choose_protocol("nope, v4.base64.channel.k8s.io", websocket) == channels.V4_BASE64
    # upstream: no subprotocol offered means the plain channel protocol; offering only unknown ones is refused
    assert channels.choose_protocol(None, websocket) == channels.NO_PROTOCOL
    assert channels.choose_protocol("", channels.PORT_FORWARD_PROTOCOLS) == channels.NO_PROTOCOL
    assert channels.choose_protocol("v3.channel.k8s.io", channels.PORT_FORWARD_PROTOCOLS) is None


def test_base64_channel_messages():
    assert channels.decode(channels.V1_BASE64, "0aGk=") == (0, b"hi")
    assert channels.decode(channels.V4_BASE64, b"4eyJXaWR0aCI6MX0=") == (4, b'{"Width":1}')
    assert channels.decode(channels.V1_BASE64, "0not base64!") is None
    assert channels.decode(channels.V1, b"\x00hi") == (0, b"hi")
    assert channels.decode(channels.NO_PROTOCOL, b"") is None


def test_spdy_dictionary_is_the_spec_one():
    d = spdy.DICTIONARY
    assert len(d) == 1423
    assert d.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert b"\x00\x00\x00\x06200 OK\x00\x00\x00\x07version" in d
    assert d.endswith(b",*,enq=0.")


def test_spdy_control_frame_layout():
    w = spdy.FrameWriter()
    assert spdy.FrameWriter.ping(5) == bytes.fromhex("80030006 00000004 00000005")
    assert spdy.FrameWriter.rst_stream(3, spdy.CANCEL) == bytes.fromhex("80030003 00000008 00000003 00000005")
    assert spdy.FrameWriter.goaway(7) == bytes.fromhex("80030007 00000008 00000007 00000000")
    assert spdy.data_frame(1, b"ab", fin=True) == bytes.fromhex("00000001 01000002 6162")
    syn = w.syn_stream(1, {"streamtype": "data"})
    word, flags_len = struct.unpack(">II", syn[:8])
    assert word == 0x80030001 and flags_len & 0xFFFFFF == len(syn) - 8
    assert struct.unpack(">I", syn[8:12])[0] == 1


def test_spdy_header_block_round_trip_shares_one_context():
    w, r = spdy.FrameWriter(), spdy.FrameReader()
    first = w.syn_stream(1, {"streamtype": "error", "port": "80", "requestid": "0"})
    second = w.syn_stream(3, {"streamtype": "data", "port": "80", "requestid": "0"})
    reply = w.syn_reply(3, {})
    # frames may arrive split anywhere and several at once
    blob = first + second + reply + spdy.data_frame(3, b"payload")
    frames = r.feed(blob[:5]) + r.feed(blob[5:40]) + r.feed(blob[40:])
    assert frames[0] == spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"})
    assert frames[1] == spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"})
    assert frames[2] == spdy.SynReply(3, {})
    assert frames[3] == spdy.DataFrame(3, b"payload")
    # the second block is smaller: it reuses the first one's compression history
    assert len(second) < len(first)


def test_spdy_header_block_decompresses_with_the_dictionary():
    block = spdy.encode_header_block({"port": "8080"})
    z = zlib.compressobj(zdict=spdy.DICTIONARY)
    compressed = z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH)
    frame = spdy.control(spdy.SYN_REPLY, 0, struct.pack(">I", 9) + compressed)
    assert spdy.FrameReader().feed(frame) == [spdy.SynReply(9, {"port": "8080"})]
    # a block compressed without the dictionary is a protocol error, not a crash
    z = zlib.compressobj(zdict=b"other dictionary")
    bad = spdy.control(spdy.SYN_REPLY, 0, struct.pack(">I", 9) + z.compress(block) + z.flush(zlib.Z_SYNC_FLUSH))
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameReader().feed(bad)


def test_spdy_other_control_frames_decode():
    r = spdy.FrameReader()
    frames = r.feed(spdy.FrameWriter.window_update(1, 1000) + spdy.FrameWriter.settings([(0, 7, 65536)])
                    + spdy.FrameWriter.rst_stream(5, spdy.REFUSED_STREAM))
    assert frames == [spdy.WindowUpdate(1, 1000), spdy.Settings([(0, 7, 65536)]), spdy.RstStream(5, 3)]
    with pytest.raises(spdy.ProtocolError):
        r.feed(struct.pack(">HHI", 0x8002, 1, 0))   # SPDY/2


def test_cri_log_lines():
    entry = parse_line(b"2024-01-02T03:04:05.123456789Z stderr P half")
    assert (entry.stream, entry.partial, entry.content) == ("stderr", True, b"half")
    assert render(entry, False) == b"half"
    full = parse_line(b"2024-01-02T03:04:05.5Z stdout F line with  spaces")
    assert render(full, True) == b"2024-01-02T03:04:05.5Z line with  spaces\n"
    assert parse_line(b"garbage") is None
    assert parse_time("2024-01-02T03:04:05.123456789Z") == pytest.approx(1704164645.123456)
