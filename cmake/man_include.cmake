# Script mode (cmake -P): writes help2man's --include file OUT from the template IN:
#   @COMMANDS@     each command's --help (acme-agent key generate --help, ...), run from AGENT
#   @EXIT_STATUS@  the README's "Exit codes" table as roff .TP entries (tests/integration/
#                  exit_codes.sh checks it against exit_code_table(), which --help prints)
#   cmake -DAGENT=acme-agent -DREADME=README.md -DIN=acme-agent.h2m.in -DOUT=acme-agent.h2m
#         -P man_include.cmake

# roff-safe text: backslashes, and no line may start with a control character.
function(roff_escape var text)
  string(REPLACE "\\" "\\e" text "${text}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" text "${text}")
  set(${var} "${text}" PARENT_SCOPE)
endfunction()

# The subcommand names listed under "Subcommands:" in a CLI11 help text.
function(subcommands_of var help)
  string(REGEX MATCH "\nSubcommands:\n(  [^\n]*\n)+" block "${help}")
  string(REGEX MATCHALL "\n  [a-z0-9-]+" names "${block}")
  list(TRANSFORM names REPLACE "^\n  " "")
  set(${var} "${names}" PARENT_SCOPE)
endfunction()

function(help_of var)
  execute_process(COMMAND ${AGENT} ${ARGN} --help OUTPUT_VARIABLE out RESULT_VARIABLE rc
                  ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${AGENT} ${ARGN} --help failed (${rc}): ${err}")
  endif()
  string(REPLACE "${AGENT}" "acme-agent" out "${out}")
  set(${var} "${out}" PARENT_SCOPE)
endfunction()

# One command: its summary, usage and options (without -h,--help and the footer every
# command inherits), preformatted.
set(COMMANDS "")
function(describe_command)
  help_of(help ${ARGN})
  subcommands_of(subs "${help}")
  if(subs)
    foreach(sub IN LISTS subs)
      describe_command(${ARGN} ${sub})
    endforeach()
    set(COMMANDS "${COMMANDS}" PARENT_SCOPE)
    return()
  endif()
  string(REPLACE ";" " " name "${ARGN}")
  string(REGEX REPLACE "\n  -h,--help[^\n]*\n" "\n" help "${help}")
  string(REGEX REPLACE "\n+Exit codes: .*" "" help "${help}")  # the top --help's footer
  string(STRIP "${help}" help)
  roff_escape(help "${help}")
  string(APPEND COMMANDS ".SS \"acme-agent ${name}\"\n.nf\n${help}\n.fi\n")
  set(COMMANDS "${COMMANDS}" PARENT_SCOPE)
endfunction()

help_of(top)
subcommands_of(commands "${top}")
foreach(command IN LISTS commands)
  describe_command(${command})
endforeach()
if(NOT COMMANDS)
  message(FATAL_ERROR "${AGENT} --help lists no subcommands")
endif()

file(STRINGS "${README}" lines)
set(in_section FALSE)
set(EXIT_STATUS "")
set(count 0)
foreach(line IN LISTS lines)
  if(line MATCHES "^#+ ")
    if(line MATCHES "^### Exit codes")
      set(in_section TRUE)
    else()
      set(in_section FALSE)
    endif()
  elseif(in_section AND line MATCHES "^\\| *([0-9]+) *\\| *(.*[^ ]) *\\|$")
    set(code "${CMAKE_MATCH_1}")
    string(REPLACE "`" "" meaning "${CMAKE_MATCH_2}")
    roff_escape(meaning "${meaning}")
    string(APPEND EXIT_STATUS ".TP\n.B ${code}\n${meaning}\n")
    math(EXPR count "${count} + 1")
  endif()
endforeach()
if(count LESS 10)
  message(FATAL_ERROR "${README}: no exit code table under '### Exit codes' (found ${count} rows)")
endif()
configure_file("${IN}" "${OUT}" @ONLY)
