"""The fast way to read a CSV: pyarrow's parser, for as long as the rows are clean.

`sources.read_table_chunks` reads CSV text with pandas, which hands every value to validation as written, so
that a bad value is reported with its file, row, column and text. pyarrow parses the same files faster, and
in a thread that does not hold the GIL (pandas' parser was a third of prepare's time on an AliExpress-layout
CSV; with pyarrow, prepare took half the time: benchmarks/results/data_pipeline.md), but it types a column
once for the whole file, reads only what it is told to, and strips no leading space from text. So it reads a
file only while what it yields is what the pandas path would accept as it is:
- every number column holds finite numbers (no empty field, no 'nan' or 'inf'), every label column 0 or 1;
- no text value starts with whitespace (pandas reads with `skipinitialspace`) or holds a line break (pandas,
  reading on, skips lines, not rows);
- pyarrow can parse the text at all (it is UTF-8, every row has the header's fields, ...).
The first chunk that breaks one of these ends the fast path, and pandas reads the file from that chunk on,
reporting bad values as it always did. Chunks have exactly `chunk_rows` rows on both paths, so which rows land
in which chunk (and so the seeded valid split) does not depend on the path.

Text columns come back as pandas categoricals (one dictionary per chunk), numbers as float64.
"""

from __future__ import annotations

import math
import mmap
import os
import queue
import threading
from typing import Callable, Dict, Iterator, Optional, Sequence, Tuple

import pandas as pd

KINDS = ('text', 'number', 'label')  # a label is a number that must be 0 or 1
# The frame attribute that lists the columns this path has checked: {'number': [...], 'label': [...]}. The
# validation of a canonical frame (sources.ChunkBuilder) takes them as they are instead of checking them again.
CHECKED = 'arrow_csv_checked'
BLOCK_BYTES = 4 << 20  # pyarrow's parse block: a parse error ends the fast path at the chunk before its read
PARALLEL_BLOCKS = 2  # blocks parsed at once, one per core of the 2-core machines this was measured on
_LET_GO = getattr(mmap, 'MADV_DONTNEED', None)  # a mapped page parsed: out of the resident set, still cached


class ArrowChunks:
  """Iterates (chunk, file line of its first row) while the rows are clean; then `rows_done` says how many rows
  it yielded and `complete` whether that was the whole file."""

  def __init__(self, path: str, *, chunk_rows: int, header: bool, names: Optional[Sequence[str]], sep: str,
               columns: Dict[str, str]):
    """`columns`: {name: one of KINDS}, the only columns read; a missing one ends the fast path."""
    self.path, self.chunk_rows, self.header, self.names, self.sep = path, chunk_rows, header, names, sep
    unknown = set(columns.values()) - set(KINDS)
    if unknown:
      raise ValueError(f'column kinds must be among {KINDS}, got {sorted(unknown)}')
    self.text_columns = [c for c, kind in columns.items() if kind == 'text']
    self.number_columns = [c for c, kind in columns.items() if kind != 'text']
    self.label_columns = [c for c, kind in columns.items() if kind == 'label']
    self.rows_done = 0
    self.complete = False
    self._parsed_all = False
    self.stopped_by = ''  # why the fast path ended early, for tests and logs
    # Started when the parser of this file is done (`ArrowChunks.start` of the next file, say): the next file is
    # then parsed while the caller still works on this one's last chunks.
    self.then: Optional[Callable[[], None]] = None
    self._chunks: queue.Queue = queue.Queue(maxsize=1)
    self._stop = threading.Event()
    self._parser: Optional[threading.Thread] = None

  def start(self) -> None:
    """Starts parsing (once), before anybody takes a chunk: a reader of several files starts the next one's
    parser when this one's ends (`then`). At a file's start its parser hands over nothing for a few tenths of a
    second, and on 1M AliExpress rows in 8 files the caller waited 2.0 s for chunks in all, mostly there."""
    if self._parser is None:
      self._parser = threading.Thread(target=self._parse, name='arrow-csv', daemon=True)
      self._parser.start()

  def close(self) -> None:
    """Stops a parser whose chunks nobody will take (the caller stopped early, or never began)."""
    self._stop.set()
    while self._parser is not None and self._parser.is_alive():  # unblock a parser waiting to hand a chunk over
      try:
        self._chunks.get(timeout=0.05)
      except queue.Empty:
        pass

  def __iter__(self) -> Iterator[Tuple[pd.DataFrame, int]]:
    """Parses in a thread of its own (pyarrow's parser does not hold the GIL), one chunk ahead of the caller,
    so that on two cores parsing overlaps whatever the caller does with the chunk before. The parser's thread
    also checks each chunk and unifies its text dictionaries (pyarrow's compute functions do not hold the GIL
    either); the chunk is converted to pandas here, which holds it."""
    first_line = 2 if self.header else 1
    self.start()
    try:
      while True:
        table = self._chunks.get()
        if table is None:
          break
        frame = table.to_pandas()
        frame.attrs[CHECKED] = {'number': list(self.number_columns), 'label': list(self.label_columns)}
        self.rows_done += len(frame)
        yield frame, first_line + self.rows_done - len(frame)
    finally:
      self.close()
    self.complete = not self.stopped_by and self._parsed_all and self.rows_done > 0  # pandas reports an empty file

  def _parse(self) -> None:
    chunks, stop = self._chunks, self._stop
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    self._parsed_all = False
    pending = []  # record batches not yet handed over
    pending_rows = 0

    def hand_over(table) -> bool:
      """Hands a parsed chunk to the caller; False when nobody takes it any more."""
      while not stop.is_set():
        try:
          chunks.put(table, timeout=0.05)
          return True
        except queue.Full:
          pass
      return False

    try:
      for batch in self._batches(pa):
        pending.append(batch)
        pending_rows += batch.num_rows
        while pending_rows >= self.chunk_rows:
          table = pa.Table.from_batches(pending)
          rest = table.slice(self.chunk_rows)
          pending, pending_rows = rest.to_batches(), rest.num_rows
          table = self._checked(table.slice(0, self.chunk_rows))
          if table is None or not hand_over(table):
            return
      if pending_rows:
        table = self._checked(pa.Table.from_batches(pending))
        if table is None or not hand_over(table):
          return
      self._parsed_all = True
    except Exception as e:  # pylint: disable=broad-except  (whatever pyarrow cannot do, pandas does, or reports)
      self.stopped_by = f'pyarrow: {type(e).__name__}: {e}'
    finally:
      if self.then is not None:  # this file is parsed: the next one's parser may start
        self.then()
      while not stop.is_set():  # the end marker
        try:
          chunks.put(None, timeout=0.05)
          break
        except queue.Full:
          pass

  def _batches(self, pa) -> Iterator:
    """The file's record batches, parsed `PARALLEL_BLOCKS` parse blocks at a time on pyarrow's threads.

    The text is cut at line ends into reads of that many blocks, each parsed by `read_csv` with its blocks on
    both cores (a line break inside a quoted value ends the fast path anyway, so a row never spans two reads);
    memory stays at a read's worth. pyarrow's streaming reader, which this replaced, parses on one core: with
    it, prepare's statistics pass kept the 2 cores about 1.4 busy (1M AliExpress-layout rows)."""
    import pyarrow.csv as pa_csv  # pylint: disable=g-import-not-at-top
    text = pa.dictionary(pa.int32(), pa.string())
    types = {**{c: text for c in self.text_columns}, **{c: pa.float64() for c in self.number_columns}}
    convert = pa_csv.ConvertOptions(column_types=types, include_columns=list(types), null_values=[''],
                                    strings_can_be_null=True, quoted_strings_can_be_null=True)
    # A blank line (a row of empty fields: the label check stops there) and a quoted line break (text that
    # spans lines, or a row of the wrong width) end the fast path: pandas, which goes on from there, skips
    # lines rather than rows, and the two counts agree only before either.
    parse = pa_csv.ParseOptions(delimiter=self.sep, ignore_empty_lines=False, newlines_in_values=False)
    pieces = self._text(pa, BLOCK_BYTES * PARALLEL_BLOCKS, header_line=self.header or not self.names)
    names = list(self.names) if self.names else None
    if self.header or names is None:  # pyarrow takes the first line for the names unless given them
      first = next(pieces)
      if names is None:
        # (on this thread: pyarrow 15 aborts the process at exit after some errors of its threaded reader)
        names = pa_csv.read_csv(first, parse_options=parse,
                                read_options=pa_csv.ReadOptions(use_threads=False)).column_names
    for piece in pieces:
      # One block per core, larger when a long line made the piece larger.
      read = pa_csv.ReadOptions(block_size=max(BLOCK_BYTES, -(-piece.size // PARALLEL_BLOCKS)), column_names=names,
                                use_threads=True)
      yield from pa_csv.read_csv(piece, read_options=read, parse_options=parse, convert_options=convert).to_batches()

  def _text(self, pa, read_bytes: int, header_line: bool) -> Iterator:
    """The file's text as pyarrow buffers of about `read_bytes`, each ending at a line end (the last one perhaps
    not); with `header_line`, the first line first, alone (an empty buffer for an empty file). A plain file is
    mapped into memory and cut without a copy (reading it in copies cost 0.35 s of system time of 1M
    AliExpress-layout rows: fresh pages, copied into again where a read was joined to the rest of the last),
    and each piece's pages are let go once it is parsed, so that the mapped file does not add up in the
    process's resident memory; a compressed file is read through its codec."""
    if _codec(pa, self.path) is not None:
      yield from self._decompressed_text(pa, read_bytes, header_line)
      return
    with open(self.path, 'rb') as f:
      size = os.fstat(f.fileno()).st_size
      if not size:  # (mmap refuses an empty file)
        if header_line:
          yield pa.py_buffer(b'')
        return
      mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    text = pa.py_buffer(mapped)
    try:
      start = 0
      if header_line:
        start = mapped.find(b'\n') + 1 or size
        yield text.slice(0, start)
      while start < size:
        end = min(start + read_bytes, size)
        while (cut := mapped.rfind(b'\n', start, end) + 1 if end < size else size) <= start:
          end = min(end + read_bytes, size)  # one line longer than a read: take more of it
        yield text.slice(start, cut - start)
        parsed = start // mmap.PAGESIZE * mmap.PAGESIZE, cut // mmap.PAGESIZE * mmap.PAGESIZE
        if parsed[1] > parsed[0] and _LET_GO is not None:  # (a page the next piece shares goes with it)
          mapped.madvise(_LET_GO, parsed[0], parsed[1] - parsed[0])
        start = cut
    finally:
      del text
      try:
        mapped.close()
      except BufferError:  # a buffer of it is still held somewhere: the mapping goes with the last of them
        pass

  def _decompressed_text(self, pa, read_bytes: int, header_line: bool) -> Iterator:
    with pa.input_stream(self.path, compression='detect') as stream:
      rest = stream.read(read_bytes)
      if header_line:
        while b'\n' not in rest and (more := stream.read(read_bytes)):
          rest += more
        cut = rest.find(b'\n') + 1 or len(rest)
        yield pa.py_buffer(rest[:cut])
        rest = rest[cut:]
      while rest:
        more = stream.read(read_bytes)
        cut = len(rest) if not more else rest.rfind(b'\n') + 1
        if not cut:  # one line longer than a read: take more of it
          rest += more
          continue
        yield pa.py_buffer(rest[:cut])
        rest = rest[cut:] + more

  def _checked(self, table):
    """The chunk with one dictionary per text column (pyarrow's parser builds one per parse block; unified here,
    off the GIL, pandas takes it as its categories as they are), or None where a value breaks what the fast
    path may hand over (`stopped_by` then says which). Its parse blocks' dictionaries are built on both cores
    as they are parsed: parsing text as plain strings and encoding each chunk here cost as many CPU seconds,
    but on this thread alone, which parsing waits on (0.54-0.77 s of 1M AliExpress-layout rows, against
    0.26-0.33 s)."""
    import pyarrow as pa  # pylint: disable=g-import-not-at-top
    import pyarrow.compute as pc  # pylint: disable=g-import-not-at-top
    zero_one = pa.array([0.0, 1.0])
    for c in self.number_columns:
      column = table.column(c)
      # An empty field is a null; a NaN or an infinity makes the sum non-finite (so may a sum that overflows:
      # pandas then reads on, which only costs time). One sum, not a mask per value: a third of the time.
      if column.null_count or not math.isfinite(pc.sum(column).as_py() or 0.0):
        self.stopped_by = f'column {c!r} holds an empty or non-finite number'
        return None
      if c in self.label_columns and not pc.all(pc.is_in(column, value_set=zero_one)).as_py():
        self.stopped_by = f'column {c!r} holds a label other than 0 and 1'
        return None
    table = table.unify_dictionaries()
    for c in self.text_columns:
      column = table.column(c).combine_chunks()
      if len(column.dictionary) and pc.any(pc.match_substring_regex(column.dictionary, r'^\s|[\r\n]')).as_py():
        self.stopped_by = f'column {c!r} holds a value that starts with whitespace or spans lines'
        return None
      table = table.set_column(table.schema.get_field_index(c), c, column)
    return table


def _codec(pa, path: str):
  """pyarrow's codec for the file name's extension (as `input_stream(compression='detect')` picks it), or None
  for a plain file, for which `Codec.detect` raises."""
  try:
    return pa.Codec.detect(path)
  except (TypeError, ValueError):
    return None

