#include "keystore/pin.h"

#include "base/files.h"
#include "base/log.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>
#include <mutex>

namespace keystore {

namespace log = base::log;

using base::Errc;
using base::fail;
using base::read_secret_file;
using base::Result;
using base::Secret;

namespace {

Result<Secret> pin_from_file(std::string source) {
    // RFC 7512 §2.4: pin-source is a URI; accept file:PATH, file:///PATH and a bare path.
    if (source.starts_with("file://"))
        source.erase(0, 7);
    else if (source.starts_with("file:"))
        source.erase(0, 5);
    auto secret = read_secret_file(source, "PIN file");
    if (!secret) return secret;
    const std::string& raw = secret->reveal();
    std::size_t n = raw.size();
    while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == '\r')) --n;
    if (n == raw.size()) return secret;
    // acme-agent strips it, but libp11's engine (nginx) and other PKCS#11 consumers read the
    // file raw and send the newline as part of the PIN: each of their starts burns a PIN try.
    static std::once_flag warned;
    std::call_once(warned, [&] {
        log::warning("PIN file " + source +
                     " ends in a newline, which other PKCS#11 consumers (nginx's engine) read "
                     "as part of the PIN; write it without one: printf '%s' PIN > " +
                     source);
    });
    return Secret(raw.substr(0, n));
}

Result<Secret> pin_from_terminal(std::string_view what) {
    const int tty = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0) return Secret{};
    termios old{};
    const bool is_tty = ::tcgetattr(tty, &old) == 0;
    if (!is_tty) {
        ::close(tty);
        return Secret{};
    }
    const std::string prompt = "Enter " + std::string(what) + ": ";
    (void)!::write(tty, prompt.data(), prompt.size());
    termios noecho = old;
    noecho.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(tty, TCSAFLUSH, &noecho);
    std::string value;
    char c = 0;
    while (::read(tty, &c, 1) == 1 && c != '\n' && c != '\r' && value.size() < 1024) value += c;
    ::tcsetattr(tty, TCSAFLUSH, &old);
    (void)!::write(tty, "\n", 1);
    ::close(tty);
    return Secret(std::move(value));
}

}  // namespace

Result<Secret> resolve_pin(const KeyUri& uri, std::string_view what, bool required) {
    if (auto source = uri.query_attr("pin-source")) return pin_from_file(*source);
    // Only from a config file (owner-only: config::load checks); the command line refuses
    // it before a URI gets here (cli::accept_command_line).
    if (auto value = uri.query_attr("pin-value")) return Secret(*value);
    auto typed = pin_from_terminal(what);
    if (!typed) return typed;
    if (typed->empty() && required)
        return fail(Errc::usage, "PIN",
                    "no " + std::string(what) +
                        ": add ?pin-source=file:PATH (a 0600 file) to the key URI, or run on a "
                        "terminal to be prompted");
    return typed;
}

}  // namespace keystore
