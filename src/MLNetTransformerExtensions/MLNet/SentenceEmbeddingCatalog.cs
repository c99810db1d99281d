using Microsoft.ML;
using MLNetTransformerExtensions.MLNet.Internal;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Sentence embeddings in ML.NET's text transforms: <c>mlContext.Transforms.Text.ApplySentenceEmbedding(...)</c>, a
/// fixed-size vector per text from a transformer encoder, ready for any ML.NET trainer.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns.</b> Input: a text column (String). Output: <c>Vector&lt;Single, H&gt;</c>, H the
/// model's hidden size (384 for the built-in models).</para>
/// <para><b>Estimator characteristics.</b> Needs no training (<c>Fit</c> loads the model); <c>Transform</c> is lazy and
/// batched, holding one batch at a time; works in <c>PredictionEngine</c>; the model's weights and tokenizer are saved
/// inside the ML.NET model file.</para>
/// </remarks>
/// <example>
/// <code>
/// var pipeline = ml.Transforms.Conversion.MapValueToKey("Label")
///     .Append(ml.Transforms.Text.ApplySentenceEmbedding("Features", "Text"))
///     .AppendCacheCheckpoint(ml) // embed once: trainers read their data many times
///     .Append(ml.MulticlassClassification.Trainers.SdcaMaximumEntropy());
/// </code>
/// </example>
public static class SentenceEmbeddingCatalog
{
    /// <summary>Embeds a text column with a sentence encoder, pooling and normalising as the model's authors do.</summary>
    /// <param name="catalog">The text transforms.</param>
    /// <param name="outputColumnName">The vector column to add.</param>
    /// <param name="inputColumnName">The text column; null means <paramref name="outputColumnName"/>.</param>
    /// <param name="modelPath">A built-in model, a model folder or a hub id; the default is the built-in all-MiniLM-L6-v2.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    /// <returns>The estimator.</returns>
    public static SentenceEmbeddingEstimator ApplySentenceEmbedding(this TransformsCatalog.TextTransforms catalog, string outputColumnName,
        string? inputColumnName = null, string modelPath = SentenceEmbeddingOptions.Defaults.ModelPath, int batchSize = SentenceEmbeddingOptions.Defaults.BatchSize) =>
        catalog.ApplySentenceEmbedding(new SentenceEmbeddingOptions
        {
            OutputColumnName = outputColumnName,
            InputColumnName = inputColumnName,
            ModelPath = modelPath,
            BatchSize = batchSize,
        });

    /// <summary>Embeds a text column with a sentence encoder, with every option.</summary>
    /// <param name="catalog">The text transforms.</param>
    /// <param name="options">Columns, model, pooling, normalisation, length and batching.</param>
    /// <returns>The estimator.</returns>
    public static SentenceEmbeddingEstimator ApplySentenceEmbedding(this TransformsCatalog.TextTransforms catalog, SentenceEmbeddingOptions options) =>
        new(catalog.GetHostEnvironment(), options);
}
