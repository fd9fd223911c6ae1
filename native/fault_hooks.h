// The transport's fault hooks: faults the tests inject into it, to reach the failure paths a
// real kernel only takes rarely (a lost ack, a dump abandoned half-way). Process-wide and off by
// default. Plain C++ (fault_injection.h gives JS its handle on them), so that a program without
// node, such as bench/floor/dump_probe, links the transport with the hooks as they are.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ipvs::faults {

// How long a receive waits for the kernel, in milliseconds.
extern std::atomic<int> reply_timeout_ms;
// The next this many received datagrams that start with an ack are thrown away unread.
extern std::atomic<int> drop_acks;
// >= 0: the next dump fails with EBADMSG (as a decode error would) after this many replies.
extern std::atomic<int> fail_dump_after;
// The next abandoned dump is not read to its end: the socket is replaced instead.
extern std::atomic<bool> skip_drain;
// Added to every namespace's service count (service_dump.h): every dump looks incomplete.
extern std::atomic<int> service_count_bias;

// What the recovery paths did, for the tests to check that the path they aimed at ran.
extern std::atomic<uint64_t> drained_dumps;
extern std::atomic<uint64_t> reconnects;
// Services a dump repeated (service_dump.h), dropped from its answer.
extern std::atomic<uint64_t> repeated_services;
// Service dumps made again because they listed fewer services than the namespace counts.
extern std::atomic<uint64_t> repeated_dumps;

// True (and one fewer ack to drop) when a datagram that starts with an ack is to be lost.
bool DropAck(const uint8_t* datagram, size_t length);
// True once, when the armed dump failure is due after `replies` replies.
bool FailDumpNow(size_t replies);

}  // namespace ipvs::faults
