# Install layout, man page and the Debian package (cpack -G DEB). Included from the top
# CMakeLists.txt; the binary's own install rule is in agent/CMakeLists.txt (bin/).
#   cmake --build BUILD && cmake --install BUILD --prefix /usr [--strip]
#   cmake --build BUILD && cd BUILD && cpack -G DEB
include(GNUInstallDirs)

# cpack (and `make install`) would first build every target, tests included, in the build
# dir it packages: build first, then install or package what was built.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

# The man page, generated from --version and --help by help2man, plus what the top --help
# cannot hold: COMMANDS (each command's --help), EXIT STATUS (the README's table), FILES,
# ENVIRONMENT. Gzipped for the package; built with the default target.
find_program(HELP2MAN help2man)
find_program(GZIP gzip)
if(HELP2MAN AND GZIP)
  set(man_dir ${PROJECT_BINARY_DIR}/man)
  set(man_include ${man_dir}/acme-agent.h2m)
  add_custom_command(
    OUTPUT ${man_include}
    COMMAND ${CMAKE_COMMAND} -DAGENT=$<TARGET_FILE:acme-agent> -DREADME=${PROJECT_SOURCE_DIR}/README.md
            -DIN=${PROJECT_SOURCE_DIR}/dist/man/acme-agent.h2m.in -DOUT=${man_include}
            -P ${PROJECT_SOURCE_DIR}/cmake/man_include.cmake
    DEPENDS acme-agent ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/dist/man/acme-agent.h2m.in
            ${PROJECT_SOURCE_DIR}/cmake/man_include.cmake
    COMMENT "Collecting the commands and exit codes for the man page")
  add_custom_command(
    OUTPUT ${man_dir}/acme-agent.1 ${man_dir}/acme-agent.1.gz
    COMMAND ${HELP2MAN} --no-info --section=1 --no-discard-stderr
            "--name=ACME client whose private keys never leave hardware"
            --include=${man_include} --output=${man_dir}/acme-agent.1 $<TARGET_FILE:acme-agent>
    COMMAND ${GZIP} -9nf -k ${man_dir}/acme-agent.1
    DEPENDS acme-agent ${man_include}
    COMMENT "Generating the acme-agent(1) man page with help2man")
  add_custom_target(acme-agent-man ALL DEPENDS ${man_dir}/acme-agent.1.gz)
  install(FILES ${man_dir}/acme-agent.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(WARNING "help2man or gzip not found: no man page (apt-get install help2man)")
endif()

install(FILES dist/systemd/acme-agent.service dist/systemd/acme-agent.timer
        DESTINATION lib/systemd/system)
install(FILES dist/bash-completion/acme-agent
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(FILES dist/config.example.toml DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME acme-agent)
set(CPACK_PACKAGE_VENDOR "acme-agent")
set(CPACK_PACKAGE_CONTACT "acme-agent maintainers <acme-agent@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "ACME client whose private keys never leave hardware")
# The long description; CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY on the first line.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "An ACME (RFC 8555) client for Let's Encrypt and other CAs in which every private-key
operation (the account's request signatures, the CSR, revocation, key roll-over, the
External Account Binding MAC) is done by a key generated inside a PKCS#11 token (an
HSM, a smart card, SoftHSMv2) or a TPM 2.0. The key is never read, exported or copied.

Challenges http-01, dns-01 (hook or RFC 2136) and tls-alpn-01; renewal by ARI;
IoT enrollment with TPM keys; a systemd timer that keeps certificates fresh.")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# pkcs11: URIs without module-path go through p11-kit's proxy module (dlopen'ed: invisible to
# dpkg-shlibdeps); the rest are the hardware stand-ins and the web server hook.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "p11-kit-modules")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "softhsm2, opensc, tpm2-tools, nginx, libengine-pkcs11-openssl")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
include(CPack)
