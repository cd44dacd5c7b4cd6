#!/usr/bin/env bash
# The Debian package: `cpack -G DEB` from the test's build dir (into a package dir of this
# test's own, so parallel runs do not collide) gives a .deb whose control fields are
# complete (Depends computed by dpkg-shlibdeps) and whose files are where Debian looks for
# them. Installed with dpkg into a fresh root (--root, no chroot: the package has no
# maintainer scripts), the binary reports the project's version, the man page renders
# with an EXIT STATUS section listing every exit code, and the bash completion completes
# commands, options and their values.
source "$(dirname "$0")/lib.sh"
for tool in cpack dpkg-deb dpkg-shlibdeps man clang++-19; do
  command -v "$tool" >/dev/null || { fail "$tool missing (apt-get install cmake dpkg-dev man-db clang-19)"; finish; }
done

VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$ACME_AGENT_BINARY_DIR/CMakeCache.txt")
[ -n "$VERSION" ] || { fail "no CMAKE_PROJECT_VERSION in the build dir's cache"; finish; }

[ -f "$ACME_AGENT_BINARY_DIR/man/acme-agent.1.gz" ] ||
  { fail "no man page in the build dir: build the default target (cmake --build BUILD)"; finish; }
PKG=$WORK/pkg
started=$SECONDS
(cd "$WORK" && cpack -G DEB -B "$PKG" --config "$ACME_AGENT_BINARY_DIR/CPackConfig.cmake") \
  >"$WORK/cpack.log" 2>&1 || { fail "cpack: $(tail -n 20 "$WORK/cpack.log")"; finish; }
DEB=$PKG/acme-agent_${VERSION}_$(dpkg --print-architecture).deb
[ -f "$DEB" ] || { fail "no $DEB: $(ls "$PKG")"; finish; }
pass "cpack -G DEB: $(basename "$DEB") in $((SECONDS - started)) s"

# Control fields.
before=$FAILURES
field() { dpkg-deb -f "$DEB" "$1"; }
expect "Package: $(field Package)" [ "$(field Package)" = acme-agent ] || true
expect "Version: $(field Version)" [ "$(field Version)" = "$VERSION" ] || true
expect "Section: $(field Section)" [ "$(field Section)" = admin ] || true
expect "Maintainer: $(field Maintainer)" grep -Eq '^[^<]+ <[^@ ]+@[^> ]+>$' <<<"$(field Maintainer)" || true
expect "Description: $(field Description)" grep -q '^ACME client whose private keys never leave hardware' <<<"$(field Description)" || true
expect "long description: $(field Description)" [ "$(field Description | sed -n 2p)" = " An ACME (RFC 8555) client for Let's Encrypt and other CAs in which every private-key" ] || true
DEPENDS=$(field Depends)
for lib in libc6 libssl3 libcurl4 libstdc++6 libtss2-esys; do
  grep -q "\b$lib\b" <<<"$DEPENDS" || fail "Depends lacks $lib: $DEPENDS"
done
grep -q '(>= ' <<<"$DEPENDS" || fail "Depends without versions (dpkg-shlibdeps not run?): $DEPENDS"
[ "$FAILURES" -eq "$before" ] && pass "control: acme-agent $VERSION, Section admin, Depends: $DEPENDS"

# Contents: path and mode.
before=$FAILURES
dpkg-deb -c "$DEB" | awk '{print $1, $NF}' >"$WORK/contents"
for entry in "-rwxr-xr-x ./usr/bin/acme-agent" \
  "-rw-r--r-- ./usr/share/man/man1/acme-agent.1.gz" \
  "-rw-r--r-- ./usr/lib/systemd/system/acme-agent.service" \
  "-rw-r--r-- ./usr/lib/systemd/system/acme-agent.timer" \
  "-rw-r--r-- ./usr/share/bash-completion/completions/acme-agent" \
  "-rw-r--r-- ./usr/share/doc/acme-agent/config.example.toml"; do
  grep -qxF -- "$entry" "$WORK/contents" || fail "package lacks '$entry': $(cat "$WORK/contents")"
done
# Nothing else but directories: no test binaries, static libraries or headers.
extra=$(grep -v '^d' "$WORK/contents" | grep -cv -e 'bin/acme-agent$' -e 'acme-agent.1.gz$' \
  -e 'acme-agent.service$' -e 'acme-agent.timer$' -e 'completions/acme-agent$' \
  -e 'config.example.toml$' || true)
expect "unexpected files in the package: $(cat "$WORK/contents")" [ "$extra" = 0 ] || true
[ "$FAILURES" -eq "$before" ] && pass "contents: binary, man page, units, completion, example config"

# Install into a fresh root with dpkg itself (no chroot needed: no maintainer scripts).
R=$WORK/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
touch "$R/var/lib/dpkg/status"
dpkg --root="$R" --force-depends --force-not-root --log=/dev/null -i "$DEB" >"$WORK/dpkg.log" 2>&1 ||
  { fail "dpkg -i: $(cat "$WORK/dpkg.log")"; finish; }
expect "dpkg status: $(dpkg --root="$R" -s acme-agent 2>&1 | head -3)" \
  grep -qx 'Status: install ok installed' <(dpkg --root="$R" -s acme-agent) || true
run_agent 0 "$R/usr/bin/acme-agent" --version && expect "--version: $(cat "$OUT")" \
  grep -qx "acme-agent $VERSION" "$OUT" && pass "dpkg --root installs it; acme-agent --version: $(cat "$OUT")"
# (its output read whole: grep -q's early exit would SIGPIPE readelf, and pipefail would hide a match)
if SECTIONS=$(readelf -S "$R/usr/bin/acme-agent") && [[ $SECTIONS == *.text* ]]; then
  [[ ! $SECTIONS =~ \.symtab|\.debug_info ]] || fail "the packaged binary is not stripped"
else
  fail "readelf cannot list the packaged binary's sections"
fi

# The man page: NAME, SYNOPSIS, DESCRIPTION from --help; EXIT STATUS with every code.
MAN=$R/usr/share/man/man1/acme-agent.1.gz
before=$FAILURES
MANWIDTH=100 man -l "$MAN" 2>"$WORK/man.err" | col -bx >"$WORK/man.txt"
for section in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" FILES ENVIRONMENT; do
  grep -qx "$section" "$WORK/man.txt" || fail "man page lacks section $section"
done
contains "$WORK/man.txt" "acme-agent - ACME client whose private keys never leave hardware" || true
grep -A2 '^SYNOPSIS' "$WORK/man.txt" | grep -q 'acme-agent \[OPTIONS\] SUBCOMMAND' ||
  fail "SYNOPSIS: $(grep -A2 '^SYNOPSIS' "$WORK/man.txt")"
sed -n '/^EXIT STATUS/,/^[A-Z]/p' "$WORK/man.txt" >"$WORK/exit.txt"
# Every code of cli::ExitCode, as the compiler reads agent/cli/exit_codes.h (clang's AST of
# the enum: no pattern over the header's text, which missed `kDeployHook = 16,  // ...`).
# An enumerator without an explicit value would show as null and fail here.
clang++-19 -x c++ -std=c++23 -fsyntax-only -I"$ACME_AGENT_SOURCE_DIR" -Xclang -ast-dump=json \
  -Xclang -ast-dump-filter -Xclang ExitCode "$ACME_AGENT_SOURCE_DIR/agent/cli/exit_codes.h" >"$WORK/ast.json"
jq -r 'select(.kind == "EnumDecl" and .name == "ExitCode") | .inner[] | select(.kind == "EnumConstantDecl")
  | "\(.name) \(.inner[0].value)"' "$WORK/ast.json" >"$WORK/codes.txt"
expect "exit codes from exit_codes.h: $(cat "$WORK/codes.txt")" \
  grep -qx 'kDeployHook 16' "$WORK/codes.txt" && expect "an exit code without a value: $(cat "$WORK/codes.txt")" \
  [ -z "$(grep -v '^k[A-Za-z]* [0-9][0-9]*$' "$WORK/codes.txt")" ]
while read -r name code; do
  grep -Eq "^ +$code +[^ ]" "$WORK/exit.txt" || fail "EXIT STATUS lacks code $code ($name): $(cat "$WORK/exit.txt")"
done <"$WORK/codes.txt"
contains "$WORK/exit.txt" "wrong PIN" || true
expect "man warnings: $(cat "$WORK/man.err")" [ ! -s "$WORK/man.err" ] || true
[ "$FAILURES" -eq "$before" ] && pass "man -l renders NAME, SYNOPSIS, OPTIONS, EXIT STATUS (every code in exit_codes.h)"

# Bash completion, as bash-completion would load it for the command acme-agent.
# complete_words WORD...: the candidates for the last word, one a line.
complete_words() {
  bash --norc -c '
    source "$1"; shift
    fn=$(complete -p acme-agent | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    "$fn" acme-agent "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}"' _ "$R/usr/share/bash-completion/completions/acme-agent" "$@"
}
completes() { # completes "EXPECTED" WORD...: the candidates, space separated, are exactly EXPECTED
  local want=$1 got; shift
  got=$(complete_words "$@" | sort | tr '\n' ' ')
  [ "$got" = "$want " ] || { fail "completion of '$*': got '$got', want '$want'"; return 1; }
}
completes "key" acme-agent ke && completes "--challenge" acme-agent issue --chal &&
  pass "completion: 'acme-agent ke' -> key, 'acme-agent issue --chal' -> --challenge"
completes "dns-01" acme-agent renew --challenge dn || true
completes "ec-p256 ec-p384" acme-agent key generate --key x --type ec || true
completes "deactivate" acme-agent --state-dir /tmp account de || true
completes "import-hmac" acme-agent key im || true
completes "--config --help --metrics --once" acme-agent run - || true
completes "--cert" acme-agent revoke --ce || true
mkdir -p "$WORK/conf.d" && touch "$WORK/conf.d/site.toml"
completes "$WORK/conf.d/site.toml" acme-agent run --config "$WORK/conf.d/s" || true
completes "$WORK/conf.d/site.toml" acme-agent revoke --cert "$WORK/conf.d/" || true
completes "$WORK/conf.d/site.toml" acme-agent --ca-file "$WORK/conf.d/si" || true

# Every command and option the installed binary's --help lists is completed (catches a
# completion file that lags behind agent/cli/app.cpp).
BIN=$R/usr/bin/acme-agent
subcommands_of() { "$BIN" "$@" --help | sed -n '/^Subcommands:/,/^$/s/^  \([a-z0-9-]*\).*/\1/p'; }
options_of() {
  "$BIN" "$@" --help | sed -n '/^Options:/,/^$/p' | grep -oE '^  (-[a-zA-Z],)?--[a-z0-9-]+' |
    tr ',' '\n' | sed 's/^ *//' | grep -vx -- -h | sort
}
lagging=0
check_command() { # check_command WORD...: a command with its subcommands, recursively
  local subs sub missing
  subs=$(subcommands_of "$@")
  if [ -n "$subs" ]; then
    missing=$(comm -23 <(sort <<<"$subs") <(complete_words acme-agent "${@:2}" "" | sort))
    [ -z "$missing" ] || { fail "completion of '$*' lacks: $missing"; lagging=1; }
    for sub in $subs; do check_command "$@" "$sub"; done
    return
  fi
  missing=$(comm -23 <(options_of "${@:2}") <(complete_words acme-agent "${@:2}" - | sort))
  [ -z "$missing" ] || { fail "completion of '$* -' lacks: ${missing//$'\n'/ }"; lagging=1; }
}
check_command acme-agent
[ "$lagging" = 0 ] && pass "completion knows every command and option of acme-agent --help"
finish
