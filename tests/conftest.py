"""Every test runs offline: telemetry off before any tool is imported."""

from selftrain.offline import set_offline_defaults

set_offline_defaults()
