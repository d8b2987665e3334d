from accelbench.runner.store import ResultStore


def test_append_and_read_back(tmp_path):
    store = ResultStore(tmp_path)
    store.append({"cell_id": "a", "status": "ok"})
    store.append({"cell_id": "b", "status": "error"})
    assert [r["cell_id"] for r in store.records()] == ["a", "b"]


def test_torn_last_line_is_skipped(tmp_path):
    store = ResultStore(tmp_path)
    store.append({"cell_id": "a"})
    with open(store.path, "a") as fh:
        fh.write('{"cell_id": "b", "sta')
    assert [r["cell_id"] for r in store.records()] == ["a"]
