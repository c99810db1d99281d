using Microsoft.ML.OnnxRuntime;
using MLNetTransformerExtensions.Export;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tokenization;

[assembly: TextClassificationModelFormat(MLNetTransformerExtensions.Onnx.OnnxTextClassificationModel.Format, typeof(MLNetTransformerExtensions.Onnx.OnnxTextClassificationModelLoader))]

namespace MLNetTransformerExtensions.Onnx;

/// <summary>
/// An exported classifier scored by ONNX Runtime: the folder's tokenizer turns texts into ids, rows of similar length
/// share a forward pass, and the graph's logits become probabilities. What <see cref="TextClassificationTransformer"/>
/// calls for each batch of rows; ML.NET users get it through <see cref="OnnxTextClassifierCatalog"/>.
/// </summary>
public sealed class OnnxTextClassificationModel : ITextClassificationModel
{
    /// <summary>Stored in ML.NET model files to find the loader: never rename.</summary>
    public const string Format = "onnx-export";

    private readonly Dictionary<string, byte[]> _files;
    private readonly TransformerTokenizer _tokenizer;
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly int _emptyTextToken;

    private OnnxTextClassificationModel(ExportedTextClassifier export, Dictionary<string, byte[]> files, TransformerTokenizer tokenizer, InferenceSession session)
    {
        Export = export;
        _files = files;
        _tokenizer = tokenizer;
        _session = session;
        _inputNames = [.. export.OnnxInputNames];
        // A decoder cannot read an empty input: it gets the end-of-text token alone, as the TorchSharp classifier does.
        _emptyTextToken = tokenizer.EosTokenId ?? tokenizer.PadTokenId;
    }

    /// <summary>What the exported folder holds.</summary>
    public ExportedTextClassifier Export { get; }

    /// <summary>The execution provider the session runs on.</summary>
    public OnnxExecutionProvider ExecutionProvider { get; private init; }

    /// <inheritdoc/>
    public int ClassCount => Export.ClassNames.Count;

    /// <summary>Opens an exported ONNX classifier folder.</summary>
    /// <param name="folder">A folder written by <c>ExportTextClassifier</c> with the ONNX format.</param>
    /// <param name="executionProvider">CPU or CUDA.</param>
    /// <param name="gpuDeviceId">The GPU for CUDA.</param>
    /// <param name="intraOpNumThreads">Threads inside one operator; 0 for ONNX Runtime's choice.</param>
    /// <returns>The classifier.</returns>
    /// <exception cref="InvalidDataException">The folder is not an ONNX export.</exception>
    /// <exception cref="InvalidOperationException">CUDA was asked for where ONNX Runtime cannot use it; the message says why.</exception>
    public static OnnxTextClassificationModel Load(string folder, OnnxExecutionProvider executionProvider = OnnxExecutionProvider.Cpu, int gpuDeviceId = 0, int intraOpNumThreads = 0)
    {
        var export = ExportedTextClassifier.Read(folder);
        if (export.Format != TextClassifierExportFormat.Onnx)
        {
            throw new InvalidDataException($"'{folder}' is a {export.Format} export; ONNX Runtime scores the ONNX format. Export again with the ONNX format.");
        }

        // Everything is read now: the folder may be a temporary copy (a model loaded from an ML.NET zip), and SaveTo
        // writes these bytes back.
        var files = Directory.EnumerateFiles(folder).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes, StringComparer.Ordinal);
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = intraOpNumThreads };
        if (executionProvider == OnnxExecutionProvider.Cuda)
        {
            AppendCuda(options, gpuDeviceId);
        }

        var session = new InferenceSession(files[ExportedTextClassifier.OnnxFileName], options);
        return new OnnxTextClassificationModel(export, files, tokenizer, session) { ExecutionProvider = executionProvider };
    }

    /// <inheritdoc/>
    public float[][] PredictProbabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var encoded = new EncodedText[texts.Count];
        for (var i = 0; i < encoded.Length; i++)
        {
            encoded[i] = _tokenizer.Encode(texts[i] ?? string.Empty, secondTexts?[i], Export.MaxLength);
            if (encoded[i].InputIds.Length == 0)
            {
                encoded[i] = encoded[i] with { InputIds = [_emptyTextToken], TokenTypeIds = [0] };
            }
        }

        var result = new float[texts.Count][];
        foreach (var pass in PassesByLength(encoded))
        {
            var batch = EncodedBatch.Pad([.. pass.Select(i => encoded[i])], _tokenizer.PadTokenId);
            var logits = Logits(batch);
            for (var r = 0; r < pass.Length; r++)
            {
                result[pass[r]] = Softmax(logits.AsSpan(r * ClassCount, ClassCount));
            }
        }

        return result;
    }

    /// <summary>The graph's logits for a padded batch, row-major (batch, classes).</summary>
    /// <param name="batch">Token ids, mask and token types, padded on either side.</param>
    /// <returns>The logits.</returns>
    public float[] Logits(EncodedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        var inputs = _inputNames.Select(name => OrtValue.CreateTensorValueFromMemory(name switch
        {
            "input_ids" => batch.InputIds,
            "attention_mask" => batch.AttentionMask,
            _ => batch.TokenTypeIds,
        }, shape)).ToArray();
        try
        {
            using var runOptions = new RunOptions();
            using var outputs = _session.Run(runOptions, _inputNames, inputs, [ExportedTextClassifier.LogitsOutputName]);
            return outputs[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var input in inputs)
            {
                input.Dispose();
            }
        }
    }

    /// <summary>Writes the exported files back (an ML.NET model file keeps them inside).</summary>
    /// <param name="folder">An empty folder.</param>
    public void SaveTo(string folder)
    {
        foreach (var (name, bytes) in _files)
        {
            File.WriteAllBytes(Path.Combine(folder, name), bytes);
        }
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => _session.Dispose();

    /// <summary>
    /// Row indices sorted by length, cut into passes so that rows of similar length share one: a pass ends when the next
    /// row is more than a quarter (and 8 tokens) longer than its first, so padding stays a small part of each pass
    /// while short batches are not split into many small runs.
    /// </summary>
    private static List<int[]> PassesByLength(EncodedText[] rows)
    {
        var order = Enumerable.Range(0, rows.Length).OrderBy(i => rows[i].Length).ToArray();
        var passes = new List<int[]>();
        var start = 0;
        for (var i = 1; i <= order.Length; i++)
        {
            if (i == order.Length || rows[order[i]].Length > (rows[order[start]].Length * 1.25) + 8)
            {
                passes.Add(order[start..i]);
                start = i;
            }
        }

        return passes;
    }

    private static float[] Softmax(ReadOnlySpan<float> logits)
    {
        var max = float.NegativeInfinity;
        foreach (var x in logits)
        {
            max = Math.Max(max, x);
        }

        var result = new float[logits.Length];
        var sum = 0.0;
        for (var i = 0; i < logits.Length; i++)
        {
            result[i] = MathF.Exp(logits[i] - max);
            sum += result[i];
        }

        for (var i = 0; i < result.Length; i++)
        {
            result[i] = (float)(result[i] / sum);
        }

        return result;
    }

    private static void AppendCuda(SessionOptions options, int deviceId)
    {
        try
        {
            options.AppendExecutionProvider_CUDA(deviceId);
        }
        catch (Exception e) when (e is OnnxRuntimeException or EntryPointNotFoundException or DllNotFoundException)
        {
            throw new InvalidOperationException(
                $"ONNX Runtime cannot use CUDA device {deviceId}: {e.Message.Trim()} " +
                "CUDA needs the GPU build of ONNX Runtime (reference Microsoft.ML.OnnxRuntime.Gpu.Linux or Microsoft.ML.OnnxRuntime.Gpu.Windows of the same version " +
                "instead of Microsoft.ML.OnnxRuntime), an NVIDIA GPU with its driver, and the CUDA and cuDNN libraries that ONNX Runtime release requires. " +
                "Score on the CPU (OnnxExecutionProvider.Cpu) otherwise.", e);
        }
    }
}

/// <summary>Restores an <see cref="OnnxTextClassificationModel"/> from the files it saved in an ML.NET model file (on the CPU).</summary>
public sealed class OnnxTextClassificationModelLoader : ITextClassificationModelLoader
{
    /// <inheritdoc/>
    public ITextClassificationModel Load(string folder) => OnnxTextClassificationModel.Load(folder);
}
