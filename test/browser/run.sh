#!/usr/bin/env bash
# Runs Hemicycle's browser tests: installs what they need (npm packages from the lockfile,
# Debian's Chromium if missing), then runs the suite with Node's test runner. Artefacts
# (room.png, axe-room.json, council.png, axe-council.json, chamber-vote-dialog.png,
# console-bleep.png, captioner.png, server logs) land in test/artifacts/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ ! -x "${HEMICYCLE_CHROMIUM:-/usr/bin/chromium}" ]]; then
  echo "run.sh: installing Debian's chromium" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi

if ! command -v node >/dev/null || [[ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]]; then
  echo "run.sh: Node.js 20 or newer is needed" >&2
  exit 1
fi

npm ci --no-audit --no-fund --loglevel=error

# One file at a time: the room scenarios already load both cores. network.test.mjs needs root
# and iproute2: it runs a second Chromium in a network namespace of its own (netns-chromium.sh)
# and cuts that namespace's link; without them it fails and says so rather than skipping.
# turn.test.mjs also needs openssl and certutil (libnss3-tools) to make and trust its TURN CA.
# blackout.test.mjs (3 s cuts of a member's link) and loss.test.mjs (10 % random loss on a
# subscriber's downlink) run by hand for now: they passed in a clean CI run, then failed one cut
# in three and one freeze of 3 s in later ones (issue 20). They measure timing in real browsers:
# on a machine loaded by other work they measure its load. SERVER_DEBUG=1 gives them a debug
# server log in test/artifacts.
# speakers.test.mjs needs espeak-ng (a spoken sentence as a fake microphone).
# prepare.test.mjs runs its own SMTP server on loopback (the smtp-server package) as the
# server's mail relay.
exec node --test --test-concurrency=1 unit.test.mjs council-unit.test.mjs vendor.test.mjs room.test.mjs council.test.mjs chamber-vote.test.mjs console-bleep.test.mjs network.test.mjs turn.test.mjs uplink.test.mjs downlink.test.mjs speakers.test.mjs prepare.test.mjs captions.test.mjs codecs.test.mjs
