/*  The fuzz targets (tests/fuzz/fuzz_*.c), callable two ways.

    Built with clang and -DZK_FUZZER by `make fuzz`, each file is a
    libFuzzer target: its LLVMFuzzerTestOneInput calls the function
    below. Built with gcc into the Criterion binary, the same functions
    are called by tests/fuzz_replay_test.c for every file of the seed
    corpora (tests/fuzz/corpus/TARGET/) and of the regression inputs
    (tests/fuzz/regress/TARGET/), so `make check` replays them all.

    A target returns 0. A finding is a crash: a sanitizer report, or
    ZK_FUZZ_CHECK failing (an invariant of the decoder, e.g. "what
    decodes re-encodes to the same bytes"), which aborts.               */

#ifndef ZK_FUZZ_H_INCLUDED
#define ZK_FUZZ_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ZK_FUZZ_CHECK(condition)                                                                   \
    do {                                                                                           \
        if (!(condition)) {                                                                        \
            fprintf (stderr, "fuzz invariant failed: %s (%s:%d)\n", #condition, __FILE__,          \
                     __LINE__);                                                                    \
            abort ();                                                                              \
        }                                                                                          \
    } while (0)

/*  The libFuzzer entry points of one target file: quiet logging (hostile
    input is logged, and libFuzzer's output is what matters), then setup
    (a statement, or nothing), and every input to function.             */
#ifdef ZK_FUZZER
#define ZK_FUZZ_TARGET(function, setup)                                                            \
    int LLVMFuzzerInitialize (int *argc, char ***argv)                                             \
    {                                                                                              \
        (void) argc;                                                                               \
        (void) argv;                                                                               \
        zk_log_set_level (ZK_LOG_ERROR);                                                           \
        setup;                                                                                     \
        return 0;                                                                                  \
    }                                                                                              \
    int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)                                  \
    {                                                                                              \
        return function (data, size);                                                              \
    }
#else
#define ZK_FUZZ_TARGET(function, setup)
#endif

//  The envelope decoder (zk_envelope_decode) and what a receiver does
//  with a decoded envelope: re-encode, JSON, the id text parser.
int zk_fuzz_envelope (const uint8_t *data, size_t size);
//  The socket-spec parser (zk_spec_validate, zk_spec_new and accessors),
//  the queue-name check and the CLI size parser.
int zk_fuzz_spec (const uint8_t *data, size_t size);
//  The queue protocol: the input is one or more ZKQ/1 requests (framing
//  in fuzz_zkq.c) sent to an in-process zk_queue server.
int zk_fuzz_zkq (const uint8_t *data, size_t size);
//  Stop the server zk_fuzz_zkq started and remove its data directory.
void zk_fuzz_zkq_cleanup (void);
//  The journal reader: the input becomes segment files (framing in
//  fuzz_journal.c), opened and replayed with zk_journal_open; every
//  record replayed is read back and decoded as a queue record.
int zk_fuzz_journal (const uint8_t *data, size_t size);
//  Remove the temporary directory zk_fuzz_journal made.
void zk_fuzz_journal_cleanup (void);

#endif
