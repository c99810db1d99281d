using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.Benchmarks;

/// <summary>
/// A lazy data view of <c>rows</c> rows with a text and a label column, cycling through given texts and labels: a
/// stream of any length that holds only its source lists, never the rows themselves.
/// </summary>
internal sealed class CyclingTextDataView : IDataView
{
    private readonly IReadOnlyList<string> _texts;
    private readonly IReadOnlyList<string> _labels;
    private readonly long _rows;

    public CyclingTextDataView(string textColumn, IReadOnlyList<string> texts, string labelColumn, IReadOnlyList<string> labels, long rows)
    {
        if (texts.Count == 0 || texts.Count != labels.Count)
        {
            throw new ArgumentException($"A cycling stream needs as many labels as texts, and at least one (got {texts.Count} texts, {labels.Count} labels).");
        }

        _texts = texts;
        _labels = labels;
        _rows = rows;
        var schema = new DataViewSchema.Builder();
        schema.AddColumn(textColumn, TextDataViewType.Instance);
        schema.AddColumn(labelColumn, TextDataViewType.Instance);
        Schema = schema.ToSchema();
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => false;

    public long? GetRowCount() => _rows;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null) =>
        new Cursor(this, columnsNeeded.Select(c => c.Index).ToHashSet());

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor(CyclingTextDataView view, HashSet<int> active) : DataViewRowCursor
    {
        private long _position = -1;

        public override DataViewSchema Schema => view.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_position + 1 >= view._rows)
            {
                return false;
            }

            _position++;
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

        public override bool IsColumnActive(DataViewSchema.Column column) => active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this cursor was created.");
            }

            var source = column.Index == 0 ? view._texts : view._labels;
            ValueGetter<ReadOnlyMemory<char>> getter = (ref ReadOnlyMemory<char> value) => value = source[(int)(_position % source.Count)].AsMemory();
            return getter as ValueGetter<TValue>
                ?? throw new InvalidOperationException($"Column '{column.Name}' is text; it cannot be read as {typeof(TValue).Name}.");
        }
    }
}
