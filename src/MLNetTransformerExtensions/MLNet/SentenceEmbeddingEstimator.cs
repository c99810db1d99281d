using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// Turns a text column into sentence embeddings. Nothing is learned: <see cref="Fit"/> checks the input column and
/// loads the encoder into a <see cref="SentenceEmbeddingTransformer"/>. Created by
/// <c>mlContext.Transforms.Text.ApplySentenceEmbedding(...)</c>.
/// </summary>
/// <remarks>
/// <para><b>Input and output columns</b></para>
/// <list type="table">
/// <listheader><term>Column</term><description>Type</description></listheader>
/// <item><term>input</term><description><see cref="string"/>; missing or empty texts are embedded as the empty string</description></item>
/// <item><term>output</term><description><c>Vector&lt;Single, H&gt;</c>, H the model's hidden size</description></item>
/// </list>
/// </remarks>
public sealed class SentenceEmbeddingEstimator : IEstimator<SentenceEmbeddingTransformer>
{
    private readonly IHost _host;
    private readonly SentenceEmbeddingOptions _options;

    internal SentenceEmbeddingEstimator(IHostEnvironment env, SentenceEmbeddingOptions options)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _host = env.Register(nameof(SentenceEmbeddingEstimator));
        _options = options;
    }

    /// <summary>Loads the encoder (downloading or converting it on first use) after checking that the input has the text column.</summary>
    /// <param name="input">Data with the text column; no row is read.</param>
    /// <returns>The transformer.</returns>
    public SentenceEmbeddingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        TextClassificationSchema.CheckText(input.Schema, _options.InputColumn, "Text");
        var setup = TransformerTelemetry.Start(TransformerTelemetry.Setup);
        var folder = ModelLocator.Resolve(_options.ModelPath, _options.Hub);
        var encoder = SentenceEncoder.FromFolder(folder, _options.Pooling, _options.Normalize, _options.MaximumLength);
        TransformerTelemetry.Stop(TransformerTelemetry.Setup, setup);
        try
        {
            encoder.InferencePrecision = _options.InferencePrecision;
        }
        catch
        {
            encoder.Dispose();
            throw;
        }

        return new SentenceEmbeddingTransformer(_host, _options.InputColumn, _options.OutputColumnName, _options.BatchSize, encoder);
    }

    /// <summary>The input's columns, then the vector column (its size is known once the model is loaded).</summary>
    /// <param name="inputSchema">The shape of the data; it must hold the text column.</param>
    /// <returns>The output shape.</returns>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        TextClassificationSchema.CheckTextShape(inputSchema, _options.InputColumn, "Text");
        var columns = inputSchema.Where(c => c.Name != _options.OutputColumnName).ToList();
        columns.Add(SchemaShapes.Vector(_options.OutputColumnName, NumberDataViewType.Single));
        return new SchemaShape(columns);
    }
}
