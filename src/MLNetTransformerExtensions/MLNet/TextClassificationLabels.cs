using System.Globalization;
using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// The classes a text classifier predicts: their count, their names, and for multiclass tasks the label
/// key's values, copied once so that neither the output schema nor a saved model needs the training data.
/// </summary>
internal sealed class TextClassificationLabels
{
    internal const string KeyValuesKind = "KeyValues";

    private static readonly MethodInfo s_readKeyValues = typeof(TextClassificationLabels).GetMethod(nameof(ReadKeyValues), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo s_describe = typeof(TextClassificationLabels).GetMethod(nameof(Describe), BindingFlags.NonPublic | BindingFlags.Static)!;
    private static readonly MethodInfo s_makeGetter = typeof(TextClassificationLabels).GetMethod(nameof(MakeGetter), BindingFlags.NonPublic | BindingFlags.Static)!;

    private TextClassificationLabels(IReadOnlyList<string> classNames, VectorDataViewType? keyValuesType, object? keyValues)
    {
        ClassNames = classNames;
        KeyValuesType = keyValuesType;
        KeyValues = keyValues;
    }

    /// <summary>The two classes of a binary task: index 0 is <see langword="false"/>, index 1 is <see langword="true"/>.</summary>
    public static TextClassificationLabels Binary { get; } = new(["False", "True"], null, null);

    public int ClassCount => ClassNames.Count;

    /// <summary>Class names by class index: the key values as text, or "0".."K-1" when the key has none.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The type of the label's key values (<c>Vector&lt;T, K&gt;</c>), or <see langword="null"/> when it has none.</summary>
    public VectorDataViewType? KeyValuesType { get; }

    /// <summary>The label's key values as a boxed <c>VBuffer&lt;T&gt;</c> of length K, or <see langword="null"/>.</summary>
    public object? KeyValues { get; }

    /// <summary>Reads the classes of a multiclass label column of type <c>Key&lt;UInt32, K&gt;</c>.</summary>
    public static TextClassificationLabels FromKeyColumn(DataViewSchema.Column label)
    {
        var classCount = checked((int)((KeyDataViewType)label.Type).Count);
        var keyValuesType = label.Annotations.Schema.GetColumnOrNull(KeyValuesKind)?.Type as VectorDataViewType;
        if (keyValuesType is null || keyValuesType.Size != classCount)
        {
            return FromKeyValues(classCount, null, null);
        }

        var values = s_readKeyValues.MakeGenericMethod(keyValuesType.ItemType.RawType).Invoke(null, [label.Annotations])!;
        return FromKeyValues(classCount, keyValuesType, values);
    }

    /// <summary>Rebuilds the classes from saved key values (or from the class count alone).</summary>
    public static TextClassificationLabels FromKeyValues(int classCount, VectorDataViewType? keyValuesType, object? keyValues)
    {
        if (keyValuesType is null || keyValues is null)
        {
            return new(Enumerable.Range(0, classCount).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray(), null, null);
        }

        var names = (string[])s_describe.MakeGenericMethod(keyValuesType.ItemType.RawType).Invoke(null, [keyValues])!;
        if (names.Length != classCount)
        {
            throw new InvalidOperationException($"The label has {classCount} classes but {names.Length} key values.");
        }

        return new(names, keyValuesType, keyValues);
    }

    /// <summary>Adds the key values under annotation <paramref name="kind"/> (KeyValues, TrainingLabelValues), if there are any.</summary>
    public void AddKeyValues(DataViewSchema.Annotations.Builder builder, string kind)
    {
        if (KeyValuesType is not null)
        {
            builder.Add(kind, KeyValuesType, (Delegate)s_makeGetter.MakeGenericMethod(KeyValuesType.ItemType.RawType).Invoke(null, [KeyValues])!);
        }
    }

    /// <summary>True when both describe the same classes in the same order.</summary>
    public bool SameClassesAs(TextClassificationLabels other) => ClassNames.SequenceEqual(other.ClassNames, StringComparer.Ordinal);

    private static object ReadKeyValues<T>(DataViewSchema.Annotations annotations)
    {
        var values = default(VBuffer<T>);
        annotations.GetValue(KeyValuesKind, ref values);
        // Densify and own the copy: the source may reuse its buffer.
        var dense = new T[values.Length];
        values.CopyTo(dense);
        return new VBuffer<T>(dense.Length, dense);
    }

    private static string[] Describe<T>(object keyValues) =>
        ((VBuffer<T>)keyValues).DenseValues()
            .Select(v => v switch
            {
                ReadOnlyMemory<char> text => text.ToString(),
                IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
                _ => v?.ToString() ?? "",
            })
            .ToArray();

    private static ValueGetter<VBuffer<T>> MakeGetter<T>(object keyValues)
    {
        var values = (VBuffer<T>)keyValues;
        return (ref VBuffer<T> destination) => values.CopyTo(ref destination);
    }
}
