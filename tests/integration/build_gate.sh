#!/usr/bin/env bash
# scripts/build.sh is the gate every later stage trusts: a failing compile or link of any
# target, or a failing configure, makes it exit non-zero with the compiler's message shown,
# even when an old acme-agent binary is still in the build dir. A `cmake` shim on PATH
# plays the compiler (seconds, no real build): build.sh runs from a copy of scripts/ in a
# scratch tree, so the shim's fake build dir is the copy's, never the real one.
source "$(dirname "$0")/lib.sh"

TREE=$WORK/tree
mkdir -p "$TREE/scripts" "$TREE/build/agent" "$WORK/bin"
cp "$SCRIPTS/build.sh" "$SCRIPTS/install-deps.sh" "$TREE/scripts/"
# The shim: CONFIGURE_RC / BUILD_RC are its exit codes, BUILD_OUT what --build prints,
# MAKE_BINARY=1 makes --build leave build/agent/acme-agent behind.
cat >"$WORK/bin/cmake" <<'EOF'
#!/usr/bin/env bash
if [ "$1" = --build ]; then
  printf '%b' "${BUILD_OUT:-}"
  [ "${MAKE_BINARY:-0}" = 1 ] && install -m 755 /dev/null build/agent/acme-agent
  exit "${BUILD_RC:-0}"
fi
[ "${CONFIGURE_RC:-0}" = 0 ] || echo "CMake Error: shim configure" >&2
exit "${CONFIGURE_RC:-0}"
EOF
chmod +x "$WORK/bin/cmake"

# gate EXPECTED_RC ENV...: runs the copy's build.sh with the shim and ENV; output in $OUT.
gate() {
  local want=$1 rc=0
  shift
  env PATH="$WORK/bin:$PATH" "$@" bash "$TREE/scripts/build.sh" >"$OUT" 2>&1 || rc=$?
  if { [ "$want" = 0 ] && [ "$rc" -ne 0 ]; } || { [ "$want" != 0 ] && [ "$rc" -eq 0 ]; }; then
    fail "build.sh exited $rc with $*, expected $([ "$want" = 0 ] && echo 0 || echo non-zero): $(head -c 600 "$OUT")"
    return 1
  fi
}

ERROR='[ 40%] Building CXX object tests/unit/CMakeFiles/test_x.dir/test_x.cpp.o\ntests/unit/test_x.cpp:3:1: error: expected unqualified-id before '"'"'}'"'"' token\n'

# A compile error in a test target while an old acme-agent is still there (the old gate
# only looked for the binary, and `grep || true` hid cmake's status).
install -m 755 /dev/null "$TREE/build/agent/acme-agent"
gate 1 BUILD_RC=2 BUILD_OUT="$ERROR" &&
  contains "$OUT" "test_x.cpp:3:1: error: expected unqualified-id" &&
  contains "$OUT" "cmake --build exited 2" && pass "a compile error fails the gate, with the compiler's message"
lacks "$OUT" "[ 40%] Building" && pass "progress lines stay filtered"

# A link error, and nothing printed by the build at all.
gate 1 BUILD_RC=1 BUILD_OUT='/usr/bin/ld: undefined reference to `foo'"'"'\ncollect2: error: ld returned 1 exit status\n' &&
  contains "$OUT" "undefined reference to" && pass "a link error fails the gate"
gate 1 BUILD_RC=1 && pass "a failed build that prints nothing fails the gate"

# A failed configure.
gate 1 CONFIGURE_RC=1 && contains "$OUT" "configure (default) failed" && pass "a failed configure fails the gate"

# A build that succeeds but leaves no agent binary.
rm -f "$TREE/build/agent/acme-agent"
gate 1 && contains "$OUT" "no build/agent/acme-agent" && pass "no agent binary fails the gate"

# A clean build whose output is only progress lines (the filter drops every line; that
# must not fail the gate either).
gate 0 MAKE_BINARY=1 BUILD_OUT='[ 50%] Building CXX object x.o\n[100%] Linking CXX executable acme-agent\n' &&
  lacks "$OUT" "Building CXX" && pass "a clean build passes, progress lines filtered"

finish
