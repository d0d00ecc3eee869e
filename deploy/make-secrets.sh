#!/bin/sh
# Make the Kafka passwords docker-compose.yml reads as Docker secrets: deploy/secrets/<principal>.password.
#
#   sudo deploy/make-secrets.sh                 # create every missing one; existing ones are kept
#   sudo deploy/make-secrets.sh --rotate NAME   # replace NAME's password (then see README-production.md)
#   sudo deploy/make-secrets.sh --revoke NAME   # mark NAME revoked: kafka-init then deletes its login
#
# The principals are `admin` (Kafka's super user) and every principal of deploy/kafka/acls.conf.
# Each password is 64 random hex digits from /dev/urandom, in a file only its owner may read
# (0600, in a 0700 folder). Compose mounts a secret file into the container as it is, with the
# owner and mode it has here, so each file is given to the user that reads it in its container:
#   admin                           uid 1000   (appuser of the apache/kafka image)
#   worker, sink, patrol, approvals, screen
#                                   uid 10001  (the gridhub image's user, see Dockerfile)
#   exports, review, desk-*         the user who ran this script with sudo (they are used on the host)
# kafka-init runs as root and reads them all. Changing owners needs root: run this with sudo. Where
# containers see bind-mounted files under other ids (rootless Docker, user-namespace remapping),
# set KAFKA_UID / GRIDHUB_IMAGE_UID to the ids as the host sees them, or CHOWN=no to skip it.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
SECRETS="$HERE/secrets"
ACLS="$HERE/kafka/acls.conf"
KAFKA_UID=${KAFKA_UID:-1000}
GRIDHUB_IMAGE_UID=${GRIDHUB_IMAGE_UID:-10001}
CHOWN=${CHOWN:-yes}
OPERATOR_UID=${SUDO_UID:-$(id -u)}

ROTATE=""
REVOKE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --rotate) [ $# -ge 2 ] || { echo "--rotate needs a principal's name" >&2; exit 2; }; ROTATE="$ROTATE $2"; shift 2 ;;
        --revoke) [ $# -ge 2 ] || { echo "--revoke needs a principal's name" >&2; exit 2; }; REVOKE="$REVOKE $2"; shift 2 ;;
        -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

PRINCIPALS="admin $(sed -e 's/#.*//' "$ACLS" | awk 'NF { print $1 }' | tr ',' '\n' | awk 'NF && !seen[$0]++' | tr '\n' ' ')"

for name in $ROTATE $REVOKE; do
    case " $PRINCIPALS " in
        *" $name "*) ;;
        *) echo "$name is no principal of $ACLS (nor admin)" >&2; exit 2 ;;
    esac
done
case " $REVOKE " in *" admin "*) echo "admin cannot be revoked, only rotated" >&2; exit 2 ;; esac

owner_of() {
    case "$1" in
        admin) echo "$KAFKA_UID" ;;
        worker | sink | patrol | approvals | screen) echo "$GRIDHUB_IMAGE_UID" ;;
        *) echo "$OPERATOR_UID" ;;
    esac
}

if [ "$CHOWN" = yes ] && [ "$(id -u)" -ne 0 ]; then
    echo "warning: not root, so the files stay yours: the containers (uids $KAFKA_UID and $GRIDHUB_IMAGE_UID)" >&2
    echo "         cannot read them. Run with sudo, or CHOWN=no if your Docker maps ids itself." >&2
fi

umask 077
mkdir -p "$SECRETS"
chmod 700 "$SECRETS"
[ "$(id -u)" -ne 0 ] || chown "$OPERATOR_UID" "$SECRETS"

for name in $PRINCIPALS; do
    file="$SECRETS/$name.password"
    case " $ROTATE " in *" $name "*) rotate=yes ;; *) rotate=no ;; esac
    case " $REVOKE " in *" $name "*) revoke=yes ;; *) revoke=no ;; esac
    if [ -s "$file" ] && [ "$rotate" = no ] && [ "$revoke" = no ]; then
        echo "kept     $file"
        continue
    fi
    if [ "$revoke" = yes ]; then
        password='!revoked'
    else
        password=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
        [ ${#password} -eq 64 ] || { echo "could not read 32 random bytes from /dev/urandom" >&2; exit 1; }
    fi
    # Written in place: a running container's bind mount keeps seeing the same file.
    printf '%s\n' "$password" >"$file"
    chmod 600 "$file"
    if [ "$CHOWN" = yes ] && [ "$(id -u)" -eq 0 ]; then
        chown "$(owner_of "$name")" "$file"
    fi
    if [ "$revoke" = yes ]; then echo "revoked  $file"; elif [ "$rotate" = yes ]; then echo "rotated  $file"; else echo "created  $file"; fi
done
