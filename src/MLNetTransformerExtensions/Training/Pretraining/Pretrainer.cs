using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Tokenization.Vocabulary;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training.Pretraining;

/// <summary>
/// Pretrains a language model on unlabelled text files: a masked-LM encoder (BERT) or a causal-LM decoder (GPT-2),
/// from scratch (a preset size, with a vocabulary trained on the input unless one is given) or continuing a pretrained
/// model on new text (domain adaptation). The result is a HuggingFace folder that the classifiers fine-tune from.
/// </summary>
/// <remarks>
/// <para>Text is streamed: files are read line by line, tokenized in chunks and packed into sequences of exactly
/// <see cref="PretrainingOptions.MaxLength"/> tokens (see <see cref="PretrainingOptions.Kind"/>), which pass through a
/// seeded shuffle buffer; the corpus is never held in memory, so files of any size work. Every
/// <see cref="PretrainingOptions.HoldOutEvery"/>-th sequence is held out for the validation loss (or
/// <see cref="PretrainingOptions.ValidationFiles"/> are used).</para>
/// <para>The optimiser and schedule are fine-tuning's (<see cref="FineTuner"/>): AdamW without decay on biases and
/// LayerNorm weights, linear warm-up then linear decay, gradient clipping.</para>
/// <para>Checkpoints go to <c>&lt;output&gt;/checkpoint/</c> every <see cref="PretrainingOptions.CheckpointEvery"/>
/// steps, at the end, and when the run is cancelled. Resuming restores the weights, AdamW's moments and step counts,
/// and the data position, and the random draws of each step (masking, dropout) are seeded by the step's number, so a
/// resumed run ends with the same weights, bit for bit, as one that never stopped.</para>
/// <para>The output folder receives config.json (<c>BertForMaskedLM</c> / <c>GPT2LMHeadModel</c>, ...),
/// model.safetensors with the LM head, the tokenizer files, and a README saying how the model was made.</para>
/// <para>Pretrain on unlabelled text and on the training split of a task (domain-adaptive pretraining), never on the
/// text of a split whose accuracy you report.</para>
/// </remarks>
/// <example>
/// <code>
/// using var result = Pretrainer.Train(["books/a.txt", "books/b.txt"], "my-bert",
///     new PretrainingOptions { Kind = PretrainingKind.Encoder, Size = ModelSize.Mini, Steps = 2000 });
/// Console.WriteLine($"validation perplexity {result.ValidationPerplexity:0.0}");
/// using var classifier = HeadClassifier.FromPretrained("my-bert", ["negative", "positive"], ClassifierKind.Encoder, 128, 1, out _);
/// </code>
/// </example>
public static partial class Pretrainer
{
    private const double ScratchLearningRate = 5e-4;
    private const double ContinuedLearningRate = 5e-5;
    private const int ContinuedMaxLength = 128;
    private const int LossWindow = 20;
    private const long ValidationSalt = long.MaxValue;

    /// <summary>Pretrains a model on <paramref name="inputFiles"/> and writes it into <paramref name="outputFolder"/>.</summary>
    /// <param name="inputFiles">UTF-8 text files, read line by line in this order.</param>
    /// <param name="outputFolder">
    /// Where the HuggingFace folder goes (created if missing), with the resumable checkpoint in its <c>checkpoint</c>
    /// subfolder. A folder that already holds a run's checkpoint is only accepted with <see cref="PretrainingOptions.Resume"/>.
    /// </param>
    /// <param name="options">Model, length of the run and hyper-parameters.</param>
    /// <param name="progress">Receives each step and stage.</param>
    /// <param name="cancellationToken">Stops within one step; a checkpoint of the last step is written first, so the run can be resumed.</param>
    /// <returns>The trained model and the run's figures.</returns>
    /// <exception cref="ArgumentException">No input files, an input is a folder, or the options contradict each other.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An option is out of range.</exception>
    /// <exception cref="FileNotFoundException">An input file does not exist.</exception>
    /// <exception cref="InvalidOperationException">The output holds a checkpoint and resuming was not asked for, or there is none to resume, or the options or inputs differ from the checkpoint's.</exception>
    /// <exception cref="Checkpoints.CheckpointException">The checkpoint to resume is damaged; the message names the file.</exception>
    /// <exception cref="InvalidDataException">The input holds no text to train on, or the model or tokenizer does not suit the kind.</exception>
    /// <exception cref="OperationCanceledException">The run was cancelled (after writing a checkpoint).</exception>
    /// <exception cref="TrainingDivergedException">The loss, the gradient norm or a weight became NaN or infinite; nothing of that step was written (an earlier checkpoint stays as it was).</exception>
    public static PretrainingResult Train(IReadOnlyList<string> inputFiles, string outputFolder, PretrainingOptions options,
        IProgress<PretrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputFiles);
        ArgumentException.ThrowIfNullOrEmpty(outputFolder);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        CheckFiles(inputFiles, "input", nameof(inputFiles));
        if (options.ValidationFiles is { } validationFiles)
        {
            CheckFiles(validationFiles, "validation", nameof(options.ValidationFiles));
        }

        TorchRuntime.EnsureInitialized();
        var output = Path.GetFullPath(outputFolder);
        if (File.Exists(output))
        {
            throw new IOException($"The output '{outputFolder}' is a file; give a folder (it is created if missing).");
        }

        var run = new Run(inputFiles, output, options, progress, cancellationToken);
        try
        {
            return run.Execute();
        }
        finally
        {
            run.Dispose();
        }
    }

    /// <summary>The options that decide the weights, as a checkpoint records them; a resumed run must repeat them.</summary>
    internal static JsonObject Fingerprint(PretrainingOptions options) => new()
    {
        [nameof(options.Kind)] = options.Kind.ToString(),
        [nameof(options.Size)] = options.From is not null ? null : JsonSerializer.SerializeToNode(options.Size),
        [nameof(options.From)] = options.From,
        [nameof(options.Tokenizer)] = options.Tokenizer is null ? null : Path.GetFullPath(options.Tokenizer),
        [nameof(options.VocabularySize)] = options.VocabularySize,
        [nameof(options.Steps)] = options.Steps,
        [nameof(options.Epochs)] = options.Epochs,
        [nameof(options.BatchSize)] = options.BatchSize,
        [nameof(options.LearningRate)] = options.LearningRate,
        [nameof(options.WeightDecay)] = options.WeightDecay,
        [nameof(options.WarmupRatio)] = options.WarmupRatio,
        [nameof(options.MaxGradNorm)] = options.MaxGradNorm,
        [nameof(options.MaxLength)] = options.MaxLength,
        [nameof(options.MaskProbability)] = options.MaskProbability,
        [nameof(options.Seed)] = options.Seed,
        [nameof(options.HoldOutEvery)] = options.ValidationFiles is null ? options.HoldOutEvery : null,
        [nameof(options.ShuffleBuffer)] = options.ShuffleBuffer,
    };

    private static void CheckFiles(IReadOnlyList<string> files, string what, string parameter)
    {
        if (files.Count == 0)
        {
            throw new ArgumentException($"No {what} files: give at least one text file.", parameter);
        }

        foreach (var file in files)
        {
            if (string.IsNullOrEmpty(file))
            {
                throw new ArgumentException($"A {what} file name is empty.", parameter);
            }

            if (Directory.Exists(file))
            {
                throw new ArgumentException($"The {what} '{file}' is a folder; give the text files in it (e.g. {Path.Combine(file, "*.txt")}).", parameter);
            }

            if (!File.Exists(file))
            {
                throw new FileNotFoundException($"The {what} file '{file}' does not exist.", file);
            }
        }
    }

    /// <summary>Reports in place: <see cref="Progress{T}"/> would post to the thread pool and reorder the reports.</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
