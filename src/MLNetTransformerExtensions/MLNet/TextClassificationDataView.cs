using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.Diagnostics;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// What <see cref="TextClassificationTransformer.Transform"/> and <see cref="SentenceEmbeddingTransformer.Transform"/>
/// return: the input's rows with the model's outputs added, computed lazily, one model call per batch of rows as a
/// cursor moves.
/// </summary>
/// <remarks>
/// A cursor that reads no output column passes the input through without calling the model. Otherwise it
/// reads up to <see cref="IBatchedTextBinding.BatchSize"/> input rows ahead, copies their active
/// columns (upstream getters may reuse their buffers), scores them in one call and then serves them.
/// Only one batch is ever held in memory.
/// </remarks>
internal sealed class TextClassificationDataView(IBatchedTextBinding binding, IDataView input) : IDataView
{
    public DataViewSchema Schema => binding.Output;

    public bool CanShuffle => input.CanShuffle;

    public long? GetRowCount() => input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var active = new bool[Schema.Count];
        foreach (var column in columnsNeeded)
        {
            active[column.Index] = true;
        }

        var scoring = active.Where((isActive, column) => isActive && binding.IsOutput(column)).Any();
        var inputColumns = binding.Input.Where(c => active[c.Index]);
        if (scoring)
        {
            inputColumns = inputColumns.Concat(binding.TextColumns);
        }

        var cursor = input.GetRowCursor(inputColumns.Distinct(), rand);
        return scoring ? new BatchingCursor(binding, cursor, active) : new PassThroughCursor(binding, cursor);
    }

    // One cursor: scoring is batched already, and the model uses every core.
    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null) =>
        [GetRowCursor(columnsNeeded, rand)];

    /// <summary>Serves the input's rows unchanged; the output columns are inactive.</summary>
    private sealed class PassThroughCursor(IBatchedTextBinding binding, DataViewRowCursor input) : DataViewRowCursor
    {
        public override DataViewSchema Schema => binding.Output;

        public override long Position => input.Position;

        public override long Batch => input.Batch;

        public override bool MoveNext() => input.MoveNext();

        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            !binding.IsOutput(column.Index) && input.IsColumnActive(binding.Input[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this cursor was created.");
            }

            return input.GetGetter<TValue>(binding.Input[column.Index]);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                input.Dispose();
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>Reads a batch of rows ahead, scores it with one model call, then serves its rows.</summary>
    private sealed class BatchingCursor : DataViewRowCursor
    {
        private readonly IBatchedTextBinding _binding;
        private readonly DataViewRowCursor _input;
        private readonly bool[] _active;
        private readonly ColumnBuffer?[] _buffers;
        private readonly Delegate?[] _outputGetters;
        private readonly ValueGetter<ReadOnlyMemory<char>> _text;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _secondText;
        private readonly ValueGetter<DataViewRowId> _inputId;
        private readonly DataViewRowId[] _ids;
        private readonly string[] _texts;
        private readonly string[]? _secondTexts;
        private float[][] _probabilities = [];
        private int _count;
        private int _slot = -1;
        private long _position = -1;
        private bool _inputDone;

        public BatchingCursor(IBatchedTextBinding binding, DataViewRowCursor input, bool[] active)
        {
            _binding = binding;
            _input = input;
            _active = active;
            var batchSize = binding.BatchSize;
            _ids = new DataViewRowId[batchSize];
            _texts = new string[batchSize];
            _secondTexts = binding.SecondText is null ? null : new string[batchSize];
            _text = input.GetGetter<ReadOnlyMemory<char>>(binding.Text);
            _secondText = binding.SecondText is { } second ? input.GetGetter<ReadOnlyMemory<char>>(second) : null;
            _inputId = input.GetIdGetter();

            _buffers = new ColumnBuffer?[binding.Output.Count];
            _outputGetters = new Delegate?[binding.Output.Count];
            for (var column = 0; column < active.Length; column++)
            {
                if (!active[column])
                {
                    continue;
                }

                if (binding.IsOutput(column))
                {
                    _outputGetters[column] = binding.MakeOutputGetter(column, CurrentProbabilities);
                }
                else
                {
                    _buffers[column] = ColumnBuffer.Create(input, binding.Input[column], batchSize, () => _slot);
                }
            }
        }

        public override DataViewSchema Schema => _binding.Output;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_slot + 1 < _count)
            {
                _slot++;
                _position++;
                return true;
            }

            if (!FillBatch())
            {
                _slot = -1;
                return false;
            }

            _slot = 0;
            _position++;
            return true;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId destination) => destination = _ids[CheckSlot()];

        public override bool IsColumnActive(DataViewSchema.Column column) => _active[column.Index];

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!IsColumnActive(column))
            {
                throw new InvalidOperationException($"Column '{column.Name}' was not requested when this cursor was created.");
            }

            var getter = _outputGetters[column.Index] ?? _buffers[column.Index]!.Getter;
            return _binding.Cast<TValue>(getter, column);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _input.Dispose();
            }

            base.Dispose(disposing);
        }

        private float[] CurrentProbabilities() => _probabilities[CheckSlot()];

        private int CheckSlot() => _slot >= 0 ? _slot : throw new InvalidOperationException("The cursor is not on a row: call MoveNext first.");

        private bool FillBatch()
        {
            var reading = TransformerTelemetry.Start(TransformerTelemetry.ReadRows);
            _count = 0;
            while (!_inputDone && _count < _texts.Length)
            {
                if (!_input.MoveNext())
                {
                    _inputDone = true;
                    break;
                }

                _texts[_count] = ReadText(_text);
                if (_secondTexts is not null)
                {
                    _secondTexts[_count] = ReadText(_secondText!);
                }

                _inputId(ref _ids[_count]);
                foreach (var buffer in _buffers)
                {
                    buffer?.Capture(_count);
                }

                _count++;
            }

            TransformerTelemetry.Stop(TransformerTelemetry.ReadRows, reading);
            if (_count == 0)
            {
                return false;
            }

            _probabilities = _binding.Compute(
                new ArraySegment<string>(_texts, 0, _count),
                _secondTexts is null ? null : (IReadOnlyList<string>)new ArraySegment<string>(_secondTexts, 0, _count));
            return true;
        }
    }

    /// <summary>Missing and empty texts both become <see cref="string.Empty"/>.</summary>
    internal static string ReadText(ValueGetter<ReadOnlyMemory<char>> getter)
    {
        var value = default(ReadOnlyMemory<char>);
        getter(ref value);
        return value.IsEmpty ? string.Empty : value.ToString();
    }
}
