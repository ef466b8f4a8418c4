"""Work that happens without a request: reminders worked out from the schema's `reminders:` (my tasks,
daily digests by e-mail and chat robots, sent once), on the job library's schedule."""
