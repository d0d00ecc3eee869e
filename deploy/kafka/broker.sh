#!/usr/bin/env bash
# The kafka service's start (docker-compose.yml): SASL/SCRAM for the apache/kafka 3.9 image.
#
# The image turns every KAFKA_* variable into a line of server.properties and, on the first
# start, formats the log directory; it has no way to add a SCRAM login while formatting, and a
# SASL listener needs a JAAS file. So, before handing over to the image's own start
# (/etc/kafka/docker/run), this script:
#   1. reads the super user's password from the Docker secret kafka-admin;
#   2. writes the broker's JAAS file (the login it uses towards itself on the INTERNAL listener)
#      and admin-client.properties (for the health check and an operator's kafka-*.sh calls),
#      both owner-only, under /opt/kafka/config/gridhub;
#   3. on the first start only, formats the log directory with the SCRAM-SHA-512 login of
#      `admin` (kafka-storage.sh format --add-scram), from the same properties the image renders.
#      The image then finds the directory formatted and starts Kafka.
# Every other login is created by kafka-init, authenticated as admin.
set -euo pipefail

SECRET=${ADMIN_SECRET:-/run/secrets/kafka-admin}
CONF=/opt/kafka/config/gridhub

die() { echo "kafka: $*" >&2; exit 1; }

[ -r "$SECRET" ] || die "no readable secret $SECRET: run deploy/make-secrets.sh (see deploy/README-production.md)"
ADMIN_PASSWORD=$(head -n 1 "$SECRET" | tr -d '\r\n')
[ -n "$ADMIN_PASSWORD" ] || die "$SECRET is empty"
[[ "$ADMIN_PASSWORD" =~ ^[A-Za-z0-9._~-]+$ ]] || die "$SECRET holds characters other than A-Z a-z 0-9 . _ ~ -"

umask 077
mkdir -p "$CONF"
cat >"$CONF/jaas.conf" <<EOF
KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required
  username="admin"
  password="$ADMIN_PASSWORD";
};
EOF
cat >"$CONF/admin-client.properties" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$ADMIN_PASSWORD";
EOF
export KAFKA_OPTS="${KAFKA_OPTS:+$KAFKA_OPTS }-Djava.security.auth.login.config=$CONF/jaas.conf"

# server.properties as the image's KafkaDockerWrapper renders it: KAFKA_FOO_BAR=x -> foo.bar=x,
# with ___ -> '-' and __ -> '_', leaving out the variables that configure the JVM and logging.
render_properties() {
    local name key
    for name in $(compgen -e); do
        case "$name" in
            KAFKA_VERSION | KAFKA_HEAP_OPTS | KAFKA_LOG4J_OPTS | KAFKA_OPTS | KAFKA_JMX_OPTS | \
                KAFKA_JVM_PERFORMANCE_OPTS | KAFKA_GC_LOG_OPTS | KAFKA_LOG4J_ROOT_LOGLEVEL | \
                KAFKA_LOG4J_LOGGERS | KAFKA_TOOLS_LOG4J_LOGLEVEL | KAFKA_JMX_HOSTNAME) continue ;;
            KAFKA_*) ;;
            *) continue ;;
        esac
        key=${name#KAFKA_}
        key=${key,,}
        key=${key//_/.}
        key=${key//.../-}
        key=${key//../_}
        printf '%s=%s\n' "$key" "${!name}"
    done
}

LOG_DIR=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}
LOG_DIR=${LOG_DIR%%,*}
if [ ! -f "$LOG_DIR/meta.properties" ]; then
    [ -n "${CLUSTER_ID:-}" ] || die "set CLUSTER_ID"
    echo "kafka: first start: formatting $LOG_DIR with the SCRAM-SHA-512 login of admin"
    render_properties >"$CONF/format.properties"
    /opt/kafka/bin/kafka-storage.sh format --cluster-id "$CLUSTER_ID" --config "$CONF/format.properties" \
        --add-scram "SCRAM-SHA-512=[name=admin,password=$ADMIN_PASSWORD]"
    rm -f "$CONF/format.properties"
fi

exec /etc/kafka/docker/run
