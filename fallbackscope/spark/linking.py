"""Chain linking on Spark (docs/metrics.md §4): the DuckDB engine's linker and relinking SQL, run per group.

The rows linked: the run's new attempts, and the stored attempts from the first new attempt's time on that
they reach (`ingest.relink.reached_scopes`, `stored_rows_sql` — the DuckDB engine's SQL, on the store's
views), which are linked again with them. The linker of each group is seeded from the stored chains as they
stood before that time (`ingest.linking.preload_sql`, `Linker.from_stored`), and `ingest.linking.link_rows` —
the very function the DuckDB engine calls — links the group's rows in link order and keeps stored chains'
ids. A group is the attempts that can link with each other: a link scope (session, else workload), merged
where an app chain id or a credit token crosses scopes. Groups are laid out contiguously in partitions and
linked in one `mapInArrow` pass.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from ingest import linking, relink

# per linked row: its results; `relinked` marks a stored attempt whose results changed (new attempts: false)
LINK_OUT = ("attempt_id STRING, chain_id STRING, attempt_index INT, `trigger` STRING, fallback_mode STRING,"
            " relinked BOOLEAN")
_OUT_SCHEMA = pa.schema([("attempt_id", pa.string()), ("chain_id", pa.string()), ("attempt_index", pa.int32()),
                         ("trigger", pa.string()), ("fallback_mode", pa.string()), ("relinked", pa.bool_())])
# kinds of rows in a group: the stored context it is seeded from, stored rows linked again, new attempts
CONTEXT, STORED, NEW = 0, 1, 2
_STORED_TYPES = {"stored_chain_id": "STRING", "stored_attempt_index": "INT", "stored_trigger": "STRING",
                 "stored_fallback_mode": "STRING"}
_ROW_COLUMNS = ("kind", "scope", *relink.LINK_INPUTS, *relink.STORED_RESULTS)


def linked(spark, con, new):
    """Return (results of the new attempts, results of stored attempts linked again that changed) as DataFrames
    of `LINK_OUT`. `new`: the run's new attempts as `relink.LINK_INPUTS` (ts as `ts_us`, `load_id` their file's)."""
    from pyspark.sql import functions as F

    new = _with_scope(new.withColumn("kind", F.lit(NEW)), F)
    for name, kind in _STORED_TYPES.items():
        new = new.withColumn(name, F.lit(None).cast(kind))
    t0 = new.agg(F.min("ts_us")).first()[0]
    seeds = _seeds(new, F)
    seeds.createOrReplaceTempView("fresh")
    latest = con.execute("SELECT epoch_us(max(ts)) FROM attempts").fetchone()[0]
    rows = new
    if latest is not None and latest >= t0:  # a late file: stored attempts after it may link differently
        scopes = {row.scope for row in new.select("scope").distinct().collect()}
        relink.reached_scopes(con, t0, scopes)
        stored = con.execute(relink.stored_rows_sql(t0)).frame.localCheckpoint(eager=True)
        con.unregister("relink_scopes")
        if not stored.isEmpty():
            stored = _with_scope(stored.withColumn("kind", F.lit(STORED)), F)
            rows = rows.unionByName(stored, allowMissingColumns=False)
            seeds.unionByName(_seeds(stored, F, chain="stored_chain_id")).createOrReplaceTempView("fresh")
    context = con.execute(linking.preload_sql(t0)).frame.localCheckpoint(eager=True)
    spark.catalog.dropTempView("fresh")
    rows = rows.select(*_ROW_COLUMNS).unionByName(_context_rows(context, F))
    groups = _components(spark, rows, F)
    if groups is None:
        rows = rows.withColumn("group", F.col("scope"))
    else:
        rows = rows.join(F.broadcast(groups), "scope", "left").withColumn("group", F.coalesce("group", "scope"))
    # one pass per partition over groups laid out contiguously: no per-group pandas frames
    parts = max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))
    rows = rows.repartition(parts, "group").sortWithinPartitions("group", "kind")
    out = rows.select("group", *_ROW_COLUMNS).mapInArrow(_link_partition(t0), LINK_OUT).localCheckpoint(eager=True)
    return out.where("NOT relinked"), out.where("relinked")


def _with_scope(frame, F):
    return frame.withColumn("scope", F.expr(linking.scope_sql()))


def _seeds(frame, F, chain: str | None = None):
    """Return relation `fresh` of `preload_sql` and `closure_sql` (stored rows: their chain as given)."""
    given = F.coalesce("given_chain_id", chain) if chain else F.col("given_chain_id")
    return frame.select("ts_us", "scope", "prompt_fp", given.alias("given_chain_id"), "credit_presented_fp",
                        "credit_minted_fp")


def _context_rows(context, F):
    """Return the stored context (`linking.STORED_COLUMNS`) as group rows of kind CONTEXT."""
    none = F.lit(None)
    kinds = {"attempt_id": "STRING", "session_id": "STRING", "workload": "STRING", "given_chain_id": "STRING",
             "credit_presented_fp": "STRING", "line_no": "BIGINT", "hop": "INT", "hop_mode": "STRING",
             "given_trigger": "STRING", "intended_model": "STRING", "given_attempt": "BIGINT", "record_no": "INT",
             "load_id": "BIGINT", "stored_trigger": "STRING", "stored_fallback_mode": "STRING"}
    picked = {"kind": F.lit(CONTEXT), "stored_chain_id": F.col("chain_id"),
              "stored_attempt_index": F.col("attempt_index").cast("int")}
    columns = []
    for name in _ROW_COLUMNS:
        if name in picked:
            columns.append(picked[name].alias(name))
        elif name in kinds:
            columns.append(none.cast(kinds[name]).alias(name))
        else:
            columns.append(F.col(name))
    return context.select(*columns)


def _link_partition(t0: int):
    def link(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """Link the groups of one partition (rows sorted by group, context first) one group at a time."""
        pending: list[pa.RecordBatch] = []
        group = None
        for batch in batches:
            groups = batch.column(0).to_pylist()
            start = 0
            for i in range(1, len(groups) + 1):
                if i < len(groups) and groups[i] == groups[start]:
                    continue
                if pending and groups[start] != group:
                    yield _link_group(pa.Table.from_batches(pending), t0)
                    pending = []
                pending.append(batch.slice(start, i - start))
                group, start = groups[start], i
        if pending:
            yield _link_group(pa.Table.from_batches(pending), t0)
    return link


def _link_group(rows: pa.Table, t0: int) -> pa.RecordBatch:
    """Link one group: seed the linker from its stored context, then `linking.link_rows` over its stored and new
    rows in link order."""
    import pyarrow.compute as pc

    kinds = rows.column("kind")
    context = rows.filter(pc.equal(kinds, CONTEXT))
    columns = {name: context.column(source).to_pylist() for name, source in
               (("chain_id", "stored_chain_id"), ("attempt_index", "stored_attempt_index"))}
    stored_rows = zip(*(columns[c] if c in columns else context.column(c).to_pylist()
                        for c in linking.STORED_COLUMNS), strict=True)
    linker = linking.Linker.from_stored(stored_rows, t0)
    todo = linking.in_link_order(rows.filter(pc.not_equal(kinds, CONTEXT)))
    if not todo.num_rows:
        return pa.RecordBatch.from_pylist([], schema=_OUT_SCHEMA)
    is_stored = pc.equal(todo.column("kind"), STORED)
    any_stored = pc.any(is_stored).as_py()
    results = linking.link_rows(linker, todo, is_stored if any_stored else None, release=False)
    out = pa.table({"attempt_id": todo.column("attempt_id"), **results,
                    "relinked": pa.array([False] * todo.num_rows, pa.bool_())}, schema=_OUT_SCHEMA)
    if any_stored:
        changed = set(relink.changed(todo.filter(is_stored), {n: v.filter(is_stored) for n, v in results.items()})
                      .column("attempt_id").to_pylist())
        keep = pc.or_(pc.invert(is_stored), pc.is_in(todo.column("attempt_id"), pa.array(list(changed), pa.string())))
        out = out.set_column(5, "relinked", is_stored).filter(keep)
    return out.combine_chunks().to_batches()[0] if out.num_rows else pa.RecordBatch.from_pylist([], schema=_OUT_SCHEMA)


def _components(spark, rows, F):
    """Return scope → group for scopes joined by an app chain id, a stored chain or a credit token crossing scopes
    (None when no link crosses a scope: each scope is its own group)."""
    chain = F.coalesce("given_chain_id", "stored_chain_id")
    chain_edges = (rows.where(chain.isNotNull()).groupBy(chain.alias("chain"))
                   .agg(F.collect_set("scope").alias("scopes")).where(F.size("scopes") > 1).select("scopes"))
    minted = rows.where("credit_minted_fp IS NOT NULL").select(F.col("credit_minted_fp").alias("fp"),
                                                               F.col("scope").alias("a"))
    presented = rows.where("credit_presented_fp IS NOT NULL").select(F.col("credit_presented_fp").alias("fp"),
                                                                     F.col("scope").alias("b"))
    credit_edges = minted.join(presented, "fp").where("a <> b").select(F.array("a", "b").alias("scopes"))
    edges = [list(r.scopes) for r in chain_edges.union(credit_edges).distinct().collect()]
    if not edges:
        return None
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for scopes in edges:
        root = find(scopes[0])
        for other in scopes[1:]:
            parent[find(other)] = root
    return spark.createDataFrame([(s, find(s)) for s in parent], "scope STRING, `group` STRING")
