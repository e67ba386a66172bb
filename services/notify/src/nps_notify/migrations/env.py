from nps_kit.migrations import run_env
from nps_notify.adapters.tables import metadata

run_env(metadata)
