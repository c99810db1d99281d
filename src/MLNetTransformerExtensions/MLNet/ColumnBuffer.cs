using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Holds one input column's values for a batch of rows read ahead, and serves the value of the row a
/// cursor is on. Values are copied, since upstream getters may reuse their buffers from row to row.
/// </summary>
internal abstract class ColumnBuffer
{
    /// <summary>A <c>ValueGetter&lt;T&gt;</c> of the column's type that reads the current row's copy.</summary>
    public abstract Delegate Getter { get; }

    /// <summary>Copies the input's current value into <paramref name="slot"/>.</summary>
    public abstract void Capture(int slot);

    public static ColumnBuffer Create(DataViewRow input, DataViewSchema.Column column, int capacity, Func<int> currentSlot)
    {
        var type = column.Type switch
        {
            VectorDataViewType vector => typeof(VectorBuffer<>).MakeGenericType(vector.ItemType.RawType),
            TextDataViewType => typeof(TextBuffer),
            _ => typeof(ValueBuffer<>).MakeGenericType(column.Type.RawType),
        };
        return (ColumnBuffer)Activator.CreateInstance(type, input, column, capacity, currentSlot)!;
    }

    /// <summary>Scalars: numbers, booleans, keys, dates are values, so a plain copy is a deep one.</summary>
    private sealed class ValueBuffer<T>(DataViewRow input, DataViewSchema.Column column, int capacity, Func<int> currentSlot) : ColumnBuffer
    {
        private readonly ValueGetter<T> _source = input.GetGetter<T>(column);
        private readonly T[] _values = new T[capacity];

        public override Delegate Getter => (ValueGetter<T>)((ref T destination) => destination = _values[currentSlot()]);

        public override void Capture(int slot) => _source(ref _values[slot]);
    }

    /// <summary>Text: the memory may point into a buffer the source reuses, so it is copied into a string.</summary>
    private sealed class TextBuffer(DataViewRow input, DataViewSchema.Column column, int capacity, Func<int> currentSlot) : ColumnBuffer
    {
        private readonly ValueGetter<ReadOnlyMemory<char>> _source = input.GetGetter<ReadOnlyMemory<char>>(column);
        private readonly ReadOnlyMemory<char>[] _values = new ReadOnlyMemory<char>[capacity];

        public override Delegate Getter => (ValueGetter<ReadOnlyMemory<char>>)((ref ReadOnlyMemory<char> destination) => destination = _values[currentSlot()]);

        public override void Capture(int slot)
        {
            var value = default(ReadOnlyMemory<char>);
            _source(ref value);
            _values[slot] = value.IsEmpty ? ReadOnlyMemory<char>.Empty : value.ToString().AsMemory();
        }
    }

    /// <summary>Vectors: read into a scratch buffer, then copied into the slot's own arrays.</summary>
    private sealed class VectorBuffer<T>(DataViewRow input, DataViewSchema.Column column, int capacity, Func<int> currentSlot) : ColumnBuffer
    {
        private readonly ValueGetter<VBuffer<T>> _source = input.GetGetter<VBuffer<T>>(column);
        private readonly VBuffer<T>[] _values = new VBuffer<T>[capacity];
        private VBuffer<T> _scratch;

        public override Delegate Getter => (ValueGetter<VBuffer<T>>)((ref VBuffer<T> destination) => _values[currentSlot()].CopyTo(ref destination));

        public override void Capture(int slot)
        {
            _source(ref _scratch);
            _scratch.CopyTo(ref _values[slot]);
        }
    }
}
