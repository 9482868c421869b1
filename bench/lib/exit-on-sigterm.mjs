// Preloaded (`node --import`) into a process run under --cpu-prof: SIGTERM/SIGINT then end it through
// process.exit(), so V8 writes the profile (the default signal action would kill it without one).
for (const signal of ['SIGTERM', 'SIGINT']) process.once(signal, () => process.exit(0));
