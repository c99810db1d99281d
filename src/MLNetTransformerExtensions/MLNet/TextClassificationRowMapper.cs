using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Scores one row at a time, for <c>PredictionEngine</c> and transformer chains. The probabilities of a
/// row are cached by its position, so reading several output columns of a row costs one model call.
/// </summary>
internal sealed class TextClassificationRowMapper(IBatchedTextBinding binding) : IRowToRowMapper
{
    public DataViewSchema InputSchema => binding.Input;

    public DataViewSchema OutputSchema => binding.Output;

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var needed = new HashSet<int>();
        foreach (var column in dependingColumns)
        {
            if (binding.IsOutput(column.Index))
            {
                needed.UnionWith(binding.TextColumns.Select(c => c.Index));
            }
            else
            {
                needed.Add(column.Index);
            }
        }

        return binding.Input.Where(c => needed.Contains(c.Index));
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        if (input.Schema != binding.Input)
        {
            throw new ArgumentException("The row's schema is not the input schema this mapper was made for.", nameof(input));
        }

        return new MappedRow(binding, input, activeColumns);
    }

    private sealed class MappedRow : DataViewRow
    {
        private readonly IBatchedTextBinding _binding;
        private readonly DataViewRow _input;
        private readonly bool[] _active;
        private readonly Delegate?[] _outputGetters;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _text;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _secondText;
        private long _cachedPosition = -1;
        private float[] _cached = [];

        public MappedRow(IBatchedTextBinding binding, DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            _binding = binding;
            _input = input;
            _active = new bool[binding.Output.Count];
            _outputGetters = new Delegate?[binding.Output.Count];
            foreach (var column in activeColumns)
            {
                _active[column.Index] = true;
                if (binding.IsOutput(column.Index))
                {
                    _outputGetters[column.Index] = binding.MakeOutputGetter(column.Index, Probabilities);
                }
            }

            if (_outputGetters.Any(g => g is not null))
            {
                _text = input.GetGetter<ReadOnlyMemory<char>>(binding.Text);
                _secondText = binding.SecondText is { } second ? input.GetGetter<ReadOnlyMemory<char>>(second) : null;
            }
        }

        public override DataViewSchema Schema => _binding.Output;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) =>
            _binding.IsOutput(column.Index) ? _active[column.Index] : _input.IsColumnActive(_binding.Input[column.Index]);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            if (!_binding.IsOutput(column.Index))
            {
                return _input.GetGetter<TValue>(_binding.Input[column.Index]);
            }

            var getter = _outputGetters[column.Index]
                ?? throw new InvalidOperationException($"Column '{column.Name}' was not requested when this row was created.");
            return _binding.Cast<TValue>(getter, column);
        }

        private float[] Probabilities()
        {
            if (_cachedPosition != _input.Position || _input.Position < 0)
            {
                var text = TextClassificationDataView.ReadText(_text!);
                var second = _secondText is null ? null : new[] { TextClassificationDataView.ReadText(_secondText) };
                _cached = _binding.Compute([text], second)[0];
                _cachedPosition = _input.Position;
            }

            return _cached;
        }
    }
}
