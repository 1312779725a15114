#!/usr/bin/env node
import { main } from './program.js';

// A reader that stops early (`ckpt inspect big.safetensors | head`) closes the pipe:
// end quietly with success, as coreutils do, instead of dying with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

// The AWS SDK (resolver commands) warns on every run that its 2027 releases will need Node 22. ckpt pins an SDK
// that supports this Node, so the notice is noise a ckpt user cannot act on; the README says which Node versions
// ckpt supports. A user who sets the variable keeps their own choice.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Node's process warnings (a deprecation or an experimental feature in a dependency, a timer warning
// newer Node versions raise) speak to the authors of those dependencies, not to a ckpt user, and would
// break the one-line and JSON errors ckpt writes on stderr. CKPT_SHOW_WARNINGS=1 shows them. Warnings
// are emitted on a later tick, so this also hides those raised while the modules above loaded.
if (!process.env.CKPT_SHOW_WARNINGS) process.removeAllListeners('warning');

process.exitCode = await main(process.argv.slice(2));
