"""Background work on Huey: imports and exports too long for one request, with live progress, cancel,
and recovery after a worker dies (the job runs again; an import is one transaction, so never half)."""
