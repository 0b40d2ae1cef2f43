#!/usr/bin/env bash
# Compiles the committed Kotlin bindings (bindings/kotlin) with ErrorPaths.kt and runs that
# against the built library: the bindings compile with a current Kotlin, load the library
# through JNA, and blocking and suspending callbacks work.
#
# Needs java (17 or newer) and Debian's libjna-java, libkotlinx-coroutines-java and
# libkotlinx-atomicfu-java (.ci/install-system-packages). The compiler is $KOTLINC, or
# the `kotlin-compiler` package from the npm registry (JetBrains' own distribution),
# installed under target/ci-tools on first use.
set -euo pipefail
crate="$(cd "$(dirname "$0")/../.." && pwd)"
root="$(cd "$crate/../.." && pwd)"
kotlin_version=2.4.20
tools="$root/target/ci-tools/kotlin-$kotlin_version"
out="$root/target/kotlin-bindings"

if [ -z "${KOTLINC:-}" ]; then
    if [ ! -x "$tools/node_modules/kotlin-compiler/bin/kotlinc" ]; then
        mkdir -p "$tools"
        npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error \
            "kotlin-compiler@$kotlin_version"
    fi
    KOTLINC="$tools/node_modules/kotlin-compiler/bin/kotlinc"
fi
stdlib="$(dirname "$(dirname "$(readlink -f "$KOTLINC")")")/lib/kotlin-stdlib.jar"

classpath=/usr/share/java/jna.jar:/usr/share/java/kotlinx-coroutines-core.jar:/usr/share/java/kotlinx-coroutines-core-common.jar:/usr/share/java/atomicfu.jar
for jar in ${classpath//:/ }; do
    [ -f "$jar" ] || { echo "missing $jar: run .ci/install-system-packages" >&2; exit 1; }
done

lib="$("$crate/tests/library.sh")"
rm -rf "$out" && mkdir -p "$out"
"$KOTLINC" -nowarn -cp "$classpath" -d "$out/check.jar" \
    "$crate/bindings/kotlin/uniffi/cable_phone/cable_phone.kt" "$crate"/tests/kotlin/*.kt
result="$(java -Djna.library.path="$(dirname "$lib")" \
    -cp "$out/check.jar:$classpath:$stdlib" ErrorPathsKt)"
echo "$result"
[ "$result" = ok ]
