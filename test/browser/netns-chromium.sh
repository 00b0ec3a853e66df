#!/bin/sh
# Playwright's executablePath for a Chromium that lives in a network namespace of its own
# (network.test.mjs): every socket it opens, WebSocket and WebRTC UDP alike, goes through that
# namespace's links. `ip netns exec` execs Chromium in place, so the pipe Playwright drives it
# through (file descriptors 3 and 4) is inherited unchanged. Needs root.
set -eu
: "${HEMICYCLE_NETNS:?name the network namespace to run Chromium in}"
exec ip netns exec "$HEMICYCLE_NETNS" "${HEMICYCLE_CHROMIUM:-/usr/bin/chromium}" "$@"
