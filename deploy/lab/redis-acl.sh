#!/usr/bin/env bash
# Print the lab Redis's ACL file: no default user, `ctl` for the control plane, one user per PoP that can
# consume its own queue and nothing else. Passwords are stored as SHA-256 (`#…`), never in clear.
#
# A PoP user `popN` (worker: `meao worker -Q mecpm.popN --hostname mepm-popN@… or mepm-popN-…@…`, MEAO_BROKER_UNACKED_KEY=
# unacked.mecpm.popN) may, and every rule is what a kombu 5.7 / Celery 5 worker was seen to send:
#   keys
#     mecpm.popN, mecpm.popN\x06\x16{3,6,9}   its queue, one list per priority step: BRPOP (consume), LLEN
#                                            (declare), LPUSH/RPUSH (restore an unacked message after a crash)
#     unacked.mecpm.popN{,_index,_mutex}      its own unacked hash, index and restore lock (acks_late): HSET,
#                                            HGET, HDEL, ZADD, ZREM, ZRANGE, SET NX PX, GET/DEL in the unlock
#                                            script. Per PoP, so pop1 never reads pop2's waiting payloads.
#     _kombu.binding{,_permanent}.mecpm.popN  SADD at queue declare (its own queue's binding)
#     _kombu.binding{,_permanent}.celery.pidbox, _kombu.binding_deadlines
#                                            the remote-control mailbox it joins (drain, resume, report), and
#                                            kombu's binding expiry (Lua scripts: EVALSHA, TIME; they may drop expired
#                                            bindings of reply.celery.pidbox and celeryev)
#     _kombu.binding{,_permanent}.{reply.celery.pidbox,celeryev}   read and expiry by that script; SMEMBERS of
#                                            the reply binding to answer a control command
#     mepm-popN-*.celery.pidbox*, mepm-popN@*.celery.pidbox*   its own mailbox queue (LLEN at declare, DEL at exit)
#     (selector) LPUSH only on *.reply.celery.pidbox: the answers to the control plane's broadcast
#   channels
#     /0.celery.pidbox                        PSUBSCRIBE: control commands (fanout)
#     /0.celeryev/worker.*                    PUBLISH its heartbeats, online, offline (the ops API's view)
# It cannot name mecpm.popM (or anything else) in any command: no read, LRANGE, DEL or purge of another
# PoP's queue, and no KEYS, SCAN, FLUSH*, CONFIG, ACL, MONITOR, DEBUG.
set -euo pipefail

LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${MEAO_LAB_STATE:-$LAB_DIR/state}"
POPS="${MEAO_LAB_POPS:-pop1 pop2}"

hashed() { printf '%s' "$(cat "$STATE/secrets/$1.pw")" | sha256sum | cut -d' ' -f1; }

# the commands a worker sends (connection set-up, consume, ack emulation, declare, remote control, events)
POP_COMMANDS="-@all +hello +auth +ping +select +client|setname +client|id +quit +reset +echo
 +brpop +llen +lpush +rpush +del +exists
 +hset +hget +hdel +zadd +zrem +zrange +zrangebyscore +zrevrangebyscore +set +get
 +sadd +srem +smembers +multi +exec +discard +watch +unwatch
 +evalsha +eval +time +script|load +script|exists
 +psubscribe +punsubscribe +subscribe +unsubscribe +publish"

echo "user default off resetkeys resetchannels -@all"
# the control plane: publishes to every queue, reads depths, purges (ops API), runs the central worker,
# receives heartbeats; no administrative or keyspace-wide commands
# the lab's administrator (ACL LOG, INFO, MONITOR while debugging): used by no meao process
echo "user admin on #$(hashed redis-admin) ~* &* +@all"
echo "user ctl on #$(hashed redis-ctl) ~* &* +@all -@dangerous +info"
for pop in $POPS; do
    q="mecpm.$pop"
    sep="$(printf '\006\026')"  # kombu's priority separator, written as its two bytes (no quoting in ACL files)
    keys="~$q ~$q${sep}3 ~$q${sep}6 ~$q${sep}9"
    keys="$keys ~unacked.$q ~unacked.${q}_index ~unacked.${q}_mutex"
    keys="$keys ~_kombu.binding.$q ~_kombu.binding_permanent.$q"
    for ex in celery.pidbox reply.celery.pidbox celeryev; do
        keys="$keys ~_kombu.binding.$ex ~_kombu.binding_permanent.$ex"
    done
    keys="$keys ~_kombu.binding_deadlines ~mepm-$pop-*.celery.pidbox* ~mepm-$pop@*.celery.pidbox*"
    channels="&/0.celery.pidbox &/0.celeryev/worker.*"
    printf 'user %s on #%s resetkeys resetchannels %s %s %s (+lpush ~*.reply.celery.pidbox)\n' \
        "$pop" "$(hashed "redis-$pop")" "$(echo $POP_COMMANDS)" "$keys" "$channels"
done
