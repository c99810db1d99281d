using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Training;

// Lets mlContext.Model.Load find Create below: the model file names this assembly and the loader signature.
[assembly: LoadableClass(typeof(SentenceEmbeddingTransformer), typeof(SentenceEmbeddingPersistence), null, typeof(SignatureLoadModel),
    "Sentence Embedding Transformer", SentenceEmbeddingPersistence.LoaderSignature)]

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>
/// Saves a <see cref="SentenceEmbeddingTransformer"/> into an ML.NET model file and loads it back, with ML.NET's internal
/// persistence API.
/// </summary>
/// <remarks>
/// <para>Binary format of the transformer's main stream, version 0x00010001:</para>
/// <list type="number">
/// <item>int32: string id of the input (text) column name</item>
/// <item>int32: string id of the output (vector) column name</item>
/// <item>int32: batch size (rows per forward pass when transforming)</item>
/// <item>int32: inference precision, 0 = float32, 1 = bfloat16 (<see cref="InferencePrecision"/>)</item>
/// </list>
/// <para>
/// The encoder is in the entry <see cref="EncoderEntry"/>: the sentence-transformers folder <see cref="SentenceEncoder.Save"/>
/// writes (its pooling, normalisation and maximum length are in that folder's files), in the folder format of
/// <see cref="TextClassificationPersistence.WriteFolder"/>.
/// </para>
/// </remarks>
internal static class SentenceEmbeddingPersistence
{
    /// <summary>Names the loader in the model header (at most 24 characters).</summary>
    internal const string LoaderSignature = "SentenceEmbeddingTransfm";

    /// <summary>The zip entry, beside the main stream, that holds the encoder's folder.</summary>
    internal const string EncoderEntry = "EncoderFiles.bin";

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "SENTEMBD",
        verWrittenCur: 0x00010001,
        verReadableCur: 0x00010001,
        verWeCanReadBack: 0x00010001,
        loaderAssemblyName: typeof(SentenceEmbeddingTransformer).Assembly.FullName,
        loaderSignature: LoaderSignature);

    public static void Save(SentenceEmbeddingTransformer transformer, ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());
        ctx.SaveNonEmptyString(transformer.InputColumnName);
        ctx.SaveNonEmptyString(transformer.OutputColumnName);
        ctx.Writer.Write(transformer.BatchSize);
        ctx.Writer.Write((int)transformer.InferencePrecision);

        var folder = TextClassificationPersistence.NewTemporaryFolder();
        try
        {
            transformer.Encoder.Save(folder);
            ctx.SaveBinaryStream(EncoderEntry, writer => TextClassificationPersistence.WriteFolder(writer, folder));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // Called by ML.NET through the LoadableClass attribute above.
    private static SentenceEmbeddingTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel(GetVersionInfo());
        var input = ctx.LoadNonEmptyString();
        var output = ctx.LoadNonEmptyString();
        var batchSize = ctx.Reader.ReadInt32();
        Decode(batchSize > 0, $"batch size {batchSize}");
        var precision = (InferencePrecision)ctx.Reader.ReadInt32();
        Decode(Enum.IsDefined(precision), $"inference precision {(int)precision}");

        var folder = TextClassificationPersistence.NewTemporaryFolder();
        SentenceEncoder encoder;
        try
        {
            Decode(ctx.TryLoadBinaryStream(EncoderEntry, reader => TextClassificationPersistence.ReadFolder(reader, folder)), $"the entry {EncoderEntry} is missing");
            encoder = SentenceEncoder.FromFolder(folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        encoder.InferencePrecision = precision;
        return new SentenceEmbeddingTransformer(env, input, output, batchSize, encoder);
    }

    private static void Decode(bool condition, string problem)
    {
        if (!condition)
        {
            throw new FormatException($"The sentence embedding transform in this model file is damaged or from an unknown version: {problem}.");
        }
    }
}
