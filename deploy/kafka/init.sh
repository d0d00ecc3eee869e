#!/usr/bin/env bash
# kafka-init (docker-compose.yml): give every gridhub principal its SCRAM-SHA-512 login and its ACLs.
#
# Runs in the apache/kafka image once Kafka is healthy, as the super user `admin`, and exits 0 when
# done; the gridhub services start only after it succeeded. It is safe to run again at any time
# (`docker compose run --rm kafka-init`): a login is set to what its secret file holds now (this
# is how a rotated password reaches Kafka), a login whose secret file reads `!revoked`
# (deploy/make-secrets.sh --revoke) is deleted, and an ACL that exists already is left as it is.
#
# The principals and their grants are the table in acls.conf (next to this script); each
# principal's password is the Docker secret kafka-<principal> (deploy/secrets/<principal>.password).
# Nothing here removes a grant: see deploy/README-production.md for revoking one.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ACLS=${ACLS_FILE:-$HERE/acls.conf}
SECRETS=${SECRETS_DIR:-/run/secrets}
BOOTSTRAP=${BOOTSTRAP_SERVER:-kafka:9092}
BIN=${TOOLS_DIR:-/opt/kafka/bin}
PARALLEL=${INIT_PARALLEL:-6}   # each kafka-*.sh call starts a JVM: run a few at once

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
umask 077

die() { echo "kafka-init: $*" >&2; exit 1; }

# A password from its secret file: one line of letters, digits, '.', '_', '~' or '-' (what
# deploy/make-secrets.sh writes), so it can go into JAAS and kafka-configs files unquoted.
read_secret() {
    local file="$SECRETS/kafka-$1" password
    [ -r "$file" ] || die "no readable secret $file for principal $1: run deploy/make-secrets.sh"
    password=$(head -n 1 "$file" | tr -d '\r\n')
    [ -n "$password" ] || die "$file is empty: run deploy/make-secrets.sh --rotate $1"
    [[ "$password" =~ ^[A-Za-z0-9._~-]+$ ]] || die "$file holds characters other than A-Z a-z 0-9 . _ ~ -"
    printf '%s' "$password"
}

ADMIN_PASSWORD=$(read_secret admin)
ADMIN_CONFIG=$WORK/admin.properties
cat >"$ADMIN_CONFIG" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PASSWORD";
EOF

# --- the table -------------------------------------------------------------------------------------------
# Lines without comments and blank lines; every line PRINCIPALS OPERATIONS RESOURCE PATTERN NAME...
mapfile -t GRANTS < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$ACLS" | grep -v '^[[:space:]]*$')
[ "${#GRANTS[@]}" -gt 0 ] || die "$ACLS holds no grants"
declare -A SEEN=()
PRINCIPALS=()
for line in "${GRANTS[@]}"; do
    read -r principals _ <<<"$line"
    IFS=, read -r -a names <<<"$principals"
    for name in "${names[@]}"; do
        [ "$name" = admin ] && die "$ACLS grants to admin, the super user: remove that line"
        [[ "$name" =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "$ACLS: principal '$name' is not a plain lower-case name"
        if [ -z "${SEEN[$name]+x}" ]; then SEEN[$name]=1; PRINCIPALS+=("$name"); fi
    done
done

# --- running the tools a few at a time ------------------------------------------------------------------
JOBS=0
STEP=0
FAILED=0
run() {  # run LABEL COMMAND...: in the background; on failure its output is shown
    local label=$1 log
    shift
    if [ "$JOBS" -ge "$PARALLEL" ]; then
        wait -n || FAILED=1
        JOBS=$((JOBS - 1))
    fi
    STEP=$((STEP + 1))
    log="$WORK/step-$STEP.log"
    (
        if "$@" >"$log" 2>&1; then
            echo "kafka-init: $label: done"
        else
            echo "kafka-init: $label: FAILED" >&2
            sed 's/^/    /' "$log" >&2
            exit 1
        fi
    ) &
    JOBS=$((JOBS + 1))
}
finish() {
    while [ "$JOBS" -gt 0 ]; do
        wait -n || FAILED=1
        JOBS=$((JOBS - 1))
    done
    [ "$FAILED" -eq 0 ] || die "some steps failed (above); fix them and run kafka-init again"
}

# --- logins -----------------------------------------------------------------------------------------------
# kafka-configs reads the password from a file (never from its command line); the value is
# `iterations=N,password=P`, the form of --add-config without its brackets.
REVOKED_MARK='!revoked'
declare -A REVOKED=()
for name in "${PRINCIPALS[@]}"; do  # every secret is checked before anything is changed
    if [ -r "$SECRETS/kafka-$name" ] && [ "$(head -n 1 "$SECRETS/kafka-$name" | tr -d '\r\n')" = "$REVOKED_MARK" ]; then
        REVOKED[$name]=1
        continue
    fi
    password=$(read_secret "$name")
    printf 'SCRAM-SHA-512=iterations=8192,password=%s\n' "$password" >"$WORK/scram-$name.properties"
done

delete_login() {  # a login that is already gone counts as deleted
    local output
    if output=$("$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
        --alter --entity-type users --entity-name "$1" --delete-config SCRAM-SHA-512 2>&1); then
        return 0
    fi
    case "$output" in *ResourceNotFound* | *"does not exist"*) return 0 ;; esac
    printf '%s\n' "$output"
    return 1
}

for name in "${PRINCIPALS[@]}"; do
    if [ -n "${REVOKED[$name]+x}" ]; then
        run "revoke $name" delete_login "$name"
        continue
    fi
    run "login $name" "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" \
        --alter --entity-type users --entity-name "$name" --add-config-file "$WORK/scram-$name.properties"
done
finish

# --- grants -----------------------------------------------------------------------------------------------
number=0
for line in "${GRANTS[@]}"; do
    read -r principals operations resource pattern rest <<<"$line"
    [ -n "${rest:-}" ] || die "$ACLS: '$line' needs PRINCIPALS OPERATIONS RESOURCE PATTERN NAME..."
    case "$pattern" in literal | prefixed) ;; *) die "$ACLS: pattern '$pattern' is neither literal nor prefixed" ;; esac
    args=(--bootstrap-server "$BOOTSTRAP" --command-config "$ADMIN_CONFIG" --add --resource-pattern-type "$pattern")
    IFS=, read -r -a names <<<"$principals"
    for name in "${names[@]}"; do args+=(--allow-principal "User:$name"); done
    IFS=, read -r -a ops <<<"$operations"
    for op in "${ops[@]}"; do args+=(--operation "$op"); done
    read -r -a targets <<<"$rest"
    for target in "${targets[@]}"; do
        [ "$target" != '*' ] || die "$ACLS: '$line' grants on every $resource ('*')"
        case "$resource" in
            topic) args+=(--topic "$target") ;;
            group) args+=(--group "$target") ;;
            cluster) args+=(--cluster) ;;
            *) die "$ACLS: resource '$resource' is not topic, group or cluster" ;;
        esac
    done
    number=$((number + 1))
    run "grant $number ($principals $operations $resource $pattern $rest)" "$BIN/kafka-acls.sh" "${args[@]}"
done
finish

echo "kafka-init: $((${#PRINCIPALS[@]} - ${#REVOKED[@]})) logins (${#REVOKED[@]} revoked) and ${#GRANTS[@]} grants are in place"
