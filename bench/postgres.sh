#!/usr/bin/env bash
# Loads the 1M-row workload (dropNulls any) into a typed PostgreSQL table with sluice, and the already-clean
# file with psql's \copy (the database's own floor), on a throwaway cluster. Needs Debian's postgresql.
#   bash bench/postgres.sh [ROWS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rows=${1:-1000000}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x $bin/initdb ]] || { echo "PostgreSQL is missing: apt-get install -y postgresql"; exit 1; }
t=$(mktemp -d /tmp/sluice-pgbench.XXXXXX); as=()
[[ $(id -u) == 0 ]] && { chown postgres "$t"; as=(runuser -u postgres --); }
trap '"${as[@]}" "$bin/pg_ctl" -D "$t/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$t"' EXIT
"${as[@]}" "$bin/initdb" -D "$t/data" -U postgres --auth=trust -E UTF8 >/dev/null
export PGHOST=127.0.0.1 PGPORT=$((40000 + RANDOM % 20000)) PGUSER=postgres PGDATABASE=postgres
"${as[@]}" "$bin/pg_ctl" -D "$t/data" -l "$t/log" -w -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $t" start >/dev/null
ddl='(id bigint, ts timestamptz, "user" text, email text, country text, amount numeric(10,2), qty int, status text, note text, score double precision)'
psql -qX -c "create table orders $ddl" -c "create table floor_copy $ddl" >/dev/null
mkdir -p "$root/bench/.data" "$t/w"
src=$root/bench/.data/gen-$rows-5.csv
[[ -f $src ]] || node "$root/test/fixtures/gen.mjs" "$rows" 5 > "$src"
printf 'pipelines:\n  - name: orders\n    steps:\n      - dropNulls: { how: any }\n    output: { format: postgres, table: orders }\n' > "$t/sluice.yaml"
cp "$src" "$t/w/orders.csv"
s0=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$t/rss" node "$root/dist/cli.js" run --once --config "$t/sluice.yaml" --watch "$t/w" --out "$t/o" --rejects "$t/r" --archive "$t/a" --failed "$t/f" --metrics-port 0 >/dev/null
s1=$(date +%s.%N)
tail -n +2 "$src" | grep -v -E '(^,|,,|,$|,"",|,""$)' > "$t/clean.csv"
c0=$(date +%s.%N); psql -qX -c "\\copy floor_copy from '$t/clean.csv' csv" >/dev/null; c1=$(date +%s.%N)
n=$(psql -qXAt -c "select count(*) from orders"); m=$(psql -qXAt -c "select count(*) from floor_copy")
s=$(echo "$s1 - $s0" | bc); c=$(echo "$c1 - $c0" | bc)
echo "rows loaded: sluice $n, psql $m"
echo "sluice end to end ${s}s (peak RSS $(( $(cat "$t/rss") / 1024 )) MB); psql \\copy of the clean file ${c}s; ratio $(echo "scale=2; $s / $c" | bc)"
