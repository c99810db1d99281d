using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// A sentence encoder as an ML.NET transformer: adds a <c>Vector&lt;Single, H&gt;</c> column of embeddings to data with
/// a text column. Made by <see cref="SentenceEmbeddingEstimator.Fit"/>, saved and loaded with <c>mlContext.Model.Save/Load</c>.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Transform"/> is lazy: nothing is embedded until a cursor reads the vector column, and then
/// <see cref="BatchSize"/> rows at a time, sorted by length within the batch so that little of a forward pass is
/// padding. Memory stays flat however many rows stream through. <c>PredictionEngine</c> embeds one row per call.
/// </para>
/// <para>
/// The transformer owns its encoder: <see cref="Dispose"/> releases it. Calls into the encoder are serialized, so one
/// transformer can serve several threads, one at a time.
/// </para>
/// </remarks>
public sealed class SentenceEmbeddingTransformer : ITransformer, IDisposable
{
    private readonly object _encoderLock = new();
    private bool _disposed;

    internal SentenceEmbeddingTransformer(IHostEnvironment env, string inputColumnName, string outputColumnName, int batchSize, SentenceEncoder encoder)
    {
        Environment = env;
        InputColumnName = inputColumnName;
        OutputColumnName = outputColumnName;
        BatchSize = batchSize;
        Encoder = encoder;
    }

    /// <summary>The text column read.</summary>
    public string InputColumnName { get; }

    /// <summary>The vector column added.</summary>
    public string OutputColumnName { get; }

    /// <summary>Rows per forward pass when transforming data.</summary>
    public int BatchSize { get; }

    /// <summary>The length of each vector: the model's hidden size.</summary>
    public int Dimension => Encoder.Dimension;

    /// <summary>How the final hidden states become one vector.</summary>
    public EmbeddingPooling Pooling => Encoder.Pooling;

    /// <summary>Whether vectors have unit length.</summary>
    public bool Normalize => Encoder.Normalize;

    /// <summary>Longest input in tokens; longer texts are truncated.</summary>
    public int MaximumLength => Encoder.MaxLength;

    /// <summary>
    /// The number format of the network: float32, or bfloat16 (faster on CPUs with bfloat16 instructions, vectors within
    /// about 10⁻²). Saved with the model; the float32 weights never change.
    /// </summary>
    public InferencePrecision InferencePrecision
    {
        get
        {
            lock (_encoderLock)
            {
                return Encoder.InferencePrecision;
            }
        }

        set
        {
            lock (_encoderLock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                Encoder.InferencePrecision = value;
            }
        }
    }

    /// <summary>Always true: the transformer maps each row on its own, so it serves <c>PredictionEngine</c>.</summary>
    public bool IsRowToRowMapper => true;

    internal IHostEnvironment Environment { get; }

    internal SentenceEncoder Encoder { get; }

    /// <summary>The input schema's columns followed by the vector column.</summary>
    /// <param name="inputSchema">The schema of the data to transform; it must hold the text column.</param>
    /// <returns>The schema of the transformed data.</returns>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new SentenceEmbeddingBinding(this, inputSchema).Output;
    }

    /// <summary>Adds the vector column to <paramref name="input"/>, lazily: rows are embedded as a cursor reads them.</summary>
    /// <param name="input">Data with the text column.</param>
    /// <returns>A view of the input with the vector column added.</returns>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new TextClassificationDataView(new SentenceEmbeddingBinding(this, input.Schema), input);
    }

    /// <summary>A row-at-a-time mapper, as <c>PredictionEngine</c> uses.</summary>
    /// <param name="inputSchema">The schema of the rows to map.</param>
    /// <returns>The mapper.</returns>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new TextClassificationRowMapper(new SentenceEmbeddingBinding(this, inputSchema));
    }

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        SentenceEmbeddingPersistence.Save(this, ctx);
    }

    /// <summary>Releases the encoder.</summary>
    public void Dispose()
    {
        lock (_encoderLock)
        {
            if (!_disposed)
            {
                _disposed = true;
                Encoder.Dispose();
            }
        }
    }

    /// <summary>Embeds one batch.</summary>
    internal float[][] Embed(IReadOnlyList<string> texts)
    {
        lock (_encoderLock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return Encoder.Embed(texts, Math.Max(1, texts.Count));
        }
    }
}
