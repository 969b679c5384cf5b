# shellcheck shell=sh
#  common.sh — sourced (POSIX sh) by the service scripts that zkit-worker runs.
#  Each script gets one request on stdin and answers on stdout; a non-zero
#  exit makes zkit-worker send an error reply (zk-status=error) whose output
#  frame is what the script printed: the clear error the caller sees.

DD_DATA=$DD_RUN/data

#  fail TEXT: print TEXT (the caller's error message) and exit 1.
fail() {
    printf '%s' "$*"
    exit 1
}

#  valid_id WORD: a delivery, customer or drone id is 1 to 64 of [A-Za-z0-9._-].
valid_id() {
    case $1 in '' | *[!A-Za-z0-9._-]*) return 1 ;; esac
    [ "${#1}" -le 64 ]
}

#  now: UTC time with milliseconds.
now() {
    date -u +%H:%M:%S.%3N
}

#  call SERVICE REQUEST: one request to SERVICE through its zkit-proxy --lb,
#  by the reliable client: DD_CALL_TIMEOUT seconds per attempt (default 2),
#  DD_CALL_RETRIES more attempts (default 1; a retried request id is answered
#  from the worker's reply cache, never run twice by it). Sets REPLY; on
#  failure prints a clear error naming SERVICE and exits 1.
call() {
    _svc=$1
    shift
    eval "_ep=\$DD_REQ_$(printf '%s' "$_svc" | tr a-z A-Z)"
    _t=${DD_CALL_TIMEOUT:-2}
    _r=${DD_CALL_RETRIES:-1}
    _rc=0
    REPLY=$(printf '%s\n' "$*" | zkit-cat "$_ep" --timeout "$_t" --retries "$_r" -q 2>/dev/null) || _rc=$?
    case $_rc in
        0) return 0 ;;
        1) fail "error: $_svc refused '$1': $REPLY" ;;
        3) fail "error: $_svc unavailable: no reply to '$1' within $((_r + 1)) attempts of ${_t} s" ;;
        *) fail "error: $_svc call '$1' failed (zkit-cat exit $_rc)" ;;
    esac
}
