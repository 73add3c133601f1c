"""``python -m cassandra_wm.llm scan FILE...`` / ``migrate FILE --endpoint ENDPOINT``: see :func:`cache.main`."""
import sys

from .cache import main

sys.exit(main())
