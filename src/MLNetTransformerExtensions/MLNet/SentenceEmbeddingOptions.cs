using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>Options of <see cref="SentenceEmbeddingEstimator"/>: the columns, the model, and how its hidden states become one vector.</summary>
public sealed class SentenceEmbeddingOptions
{
    /// <summary>The column the transform adds: a <c>Vector&lt;Single, H&gt;</c>, H the model's hidden size.</summary>
    public string OutputColumnName = Defaults.OutputColumnName;

    /// <summary>The text column (<see cref="string"/>) to embed; null means <see cref="OutputColumnName"/>. Missing or empty texts are embedded as the empty string.</summary>
    public string? InputColumnName;

    /// <summary>
    /// The encoder: a built-in model (<c>builtin:all-MiniLM-L6-v2</c>, <c>builtin:arctic-embed-xs</c>), a HuggingFace or
    /// sentence-transformers model folder, or a HuggingFace Hub id (<c>owner/name[@revision]</c>).
    /// </summary>
    public string ModelPath = Defaults.ModelPath;

    /// <summary>Where and how hub ids are downloaded; null reads the environment (see <see cref="HubOptions"/>).</summary>
    public HubOptions? Hub;

    /// <summary>
    /// The pooling; null takes the model's (its sentence-transformers files; mean for encoders and last-token for
    /// decoders when it has none).
    /// </summary>
    public EmbeddingPooling? Pooling;

    /// <summary>Whether vectors are scaled to unit length; null takes the model's (true when it ends with a Normalize module).</summary>
    public bool? Normalize;

    /// <summary>Longest input in tokens (special tokens included); longer texts are truncated. Null takes the model's <c>max_seq_length</c>, else its maximum.</summary>
    public int? MaximumLength;

    /// <summary>Rows per forward pass: <c>Transform</c> reads this many rows ahead and embeds them together, shortest with shortest.</summary>
    public int BatchSize = Defaults.BatchSize;

    /// <summary>
    /// float32 (default) or bfloat16 for the network (pooling and normalisation stay in float32); saved with the model.
    /// See <see cref="Training.InferencePrecision"/>.
    /// </summary>
    public InferencePrecision InferencePrecision = InferencePrecision.Float32;

    /// <summary>The default values of the options.</summary>
    public static class Defaults
    {
        /// <summary>The default output column.</summary>
        public const string OutputColumnName = "Features";

        /// <summary>The default model: sentence-transformers' all-MiniLM-L6-v2, built in.</summary>
        public const string ModelPath = BuiltinModels.DefaultName;

        /// <summary>The default rows per forward pass.</summary>
        public const int BatchSize = 32;
    }

    internal string InputColumn => InputColumnName ?? OutputColumnName;

    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(OutputColumnName))
        {
            throw new ArgumentException("OutputColumnName must name a column; it is empty.", "options");
        }

        if (InputColumnName is { } input && string.IsNullOrWhiteSpace(input))
        {
            throw new ArgumentException("InputColumnName must be null (the output column's name) or a column name, not blank.", "options");
        }

        if (string.IsNullOrWhiteSpace(ModelPath))
        {
            throw new ArgumentException($"ModelPath must name a model: a built-in one ({string.Join(", ", BuiltinModels.Names)}), a folder or a hub id.", "options");
        }

        if (BatchSize < 1)
        {
            throw new ArgumentOutOfRangeException("options", BatchSize, "BatchSize must be at least 1.");
        }

        if (MaximumLength is < 2)
        {
            throw new ArgumentOutOfRangeException("options", MaximumLength, "MaximumLength must be at least 2, or null for the model's.");
        }

        if (Pooling is { } pooling && !Enum.IsDefined(pooling))
        {
            throw new ArgumentOutOfRangeException("options", pooling, "Pooling must be Mean, Cls or LastToken, or null for the model's.");
        }

        if (!Enum.IsDefined(InferencePrecision))
        {
            throw new ArgumentOutOfRangeException("options", InferencePrecision, $"InferencePrecision must be {nameof(InferencePrecision.Float32)} or {nameof(InferencePrecision.BFloat16)}.");
        }
    }
}
