#include "keystore/pin.h"

#include "keystore/files.h"
#include "keystore/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

namespace keystore {

namespace {

Result<Secret> pin_from_file(std::string source) {
    // RFC 7512 §2.4: pin-source is a URI; accept file:PATH, file:///PATH and a bare path.
    if (source.starts_with("file://"))
        source.erase(0, 7);
    else if (source.starts_with("file:"))
        source.erase(0, 5);
    struct stat st{};
    if (::stat(source.c_str(), &st) != 0)
        return fail(Errc::not_found, "pin-source", "cannot read PIN file " + source);
    if (st.st_mode & 077)
        return fail(Errc::usage, "pin-source",
                    "PIN file " + source + " is readable by others; run: chmod 600 " + source);
    auto text = read_file(source, 4096);
    if (!text) return std::unexpected(text.error());
    std::string& raw = *text;
    while (!raw.empty() && (raw.back() == '\n' || raw.back() == '\r')) raw.pop_back();
    return Secret(std::move(raw));
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
    if (auto value = uri.query_attr("pin-value")) {
        log::warning("the key URI carries a pin-value; prefer ?pin-source=file:PATH (mode 0600)");
        return Secret(*value);
    }
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
