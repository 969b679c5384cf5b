#!/bin/sh
#  Accounts: "check CUSTOMER [DELIVERY]" -> "ok CUSTOMER". Customers whose name starts
#  with "blocked" are refused (so a test can see a clear refusal).
. "$DD_HOME/common.sh"
read -r verb customer rest || true
[ "$verb" = check ] || fail "accounts: unknown request '$verb'"
valid_id "$customer" || fail "accounts: bad customer id"
case $customer in blocked*) fail "accounts: customer $customer is blocked" ;; esac
printf 'ok %s' "$customer"
