import sys, time
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("../app.py", default_timeout=300).run()
at.session_state["dataset"] = "big"
t = time.perf_counter(); at.switch_page("pages/dataset.py").run(); print("first", time.perf_counter() - t, at.exception)
for i in range(3):
    t = time.perf_counter(); at.run(); print("rerun", round(time.perf_counter() - t, 2), [m.value for m in at.metric][:2])
