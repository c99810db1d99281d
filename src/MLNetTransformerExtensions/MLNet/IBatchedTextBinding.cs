using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// A transformer that computes one vector of floats per row from its text column(s), bound to one input schema: what
/// the lazy batched data view and the row mapper need, whether the vector is a row of class probabilities
/// (<see cref="TextClassificationBinding"/>) or a sentence embedding (<see cref="SentenceEmbeddingBinding"/>).
/// </summary>
internal interface IBatchedTextBinding
{
    /// <summary>The input schema.</summary>
    DataViewSchema Input { get; }

    /// <summary>Every input column, then the outputs.</summary>
    DataViewSchema Output { get; }

    /// <summary>The text column read.</summary>
    DataViewSchema.Column Text { get; }

    /// <summary>The second text column read, or null.</summary>
    DataViewSchema.Column? SecondText { get; }

    /// <summary>The input columns the outputs are computed from.</summary>
    IEnumerable<DataViewSchema.Column> TextColumns { get; }

    /// <summary>Rows per model call when transforming data.</summary>
    int BatchSize { get; }

    /// <summary>Whether output column <paramref name="column"/> is one the transformer adds.</summary>
    bool IsOutput(int column);

    /// <summary>A getter for output column <paramref name="column"/> that reads the current row's vector from <paramref name="values"/>.</summary>
    Delegate MakeOutputGetter(int column, Func<float[]> values);

    /// <summary>Casts a getter to the type the caller asked for, or says which type the column holds.</summary>
    ValueGetter<TValue> Cast<TValue>(Delegate getter, DataViewSchema.Column column) =>
        getter as ValueGetter<TValue> ?? throw new InvalidOperationException(
            $"Column '{column.Name}' holds {column.Type} values; a getter for {typeof(TValue).Name} cannot read it.");

    /// <summary>One vector per row of a batch, in order.</summary>
    float[][] Compute(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts);
}
