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
public static class Pretrainer
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

    /// <summary>One session of a run: set-up (fresh or resumed), the data, the loop, checkpoints and the export.</summary>
    private sealed class Run : IDisposable
    {
        private readonly IReadOnlyList<string> _inputFiles;
        private readonly string _output;
        private readonly PretrainingOptions _options;
        private readonly IProgress<PretrainingProgress>? _progress;
        private readonly CancellationToken _cancellation;

        private LanguageModel? _model;
        private AdamW? _optimizer;
        private TransformerTokenizer _tokenizer = null!;
        private JsonObject _config = null!;
        private List<string> _parameterNames = null!;
        private List<InputFile> _inputs = null!;
        private List<InputFile> _validationInputs = null!;
        private int _maxLength;
        private double _learningRate;
        private bool _trainedTokenizer;
        private LoadReport? _loadReport;
        private TrainerState? _resumed;
        private bool _handedOver;

        public Run(IReadOnlyList<string> inputFiles, string output, PretrainingOptions options, IProgress<PretrainingProgress>? progress, CancellationToken cancellation)
        {
            _inputFiles = inputFiles;
            _output = output;
            _options = options;
            _progress = progress;
            _cancellation = cancellation;
        }

        private bool IsEncoder => _options.Kind == PretrainingKind.Encoder;

        public PretrainingResult Execute()
        {
            _inputs = PretrainingCorpus.Describe(_inputFiles, _cancellation);
            _validationInputs = _options.ValidationFiles is { } files ? PretrainingCorpus.Describe(files, _cancellation) : [];
            if (_options.Resume)
            {
                Resume();
            }
            else
            {
                Start();
            }

            _learningRate = _options.LearningRate ?? (_options.From is null ? ScratchLearningRate : ContinuedLearningRate);
            var (decay, noDecay) = FineTuner.ParameterGroups(_model!);
            _parameterNames = [.. decay.Concat(noDecay).Select(p => p.Name)];
            NativeHeap.PrepareForTraining(_model!);
            _optimizer = FineTuner.CreateOptimizer(_model!, _learningRate, _options.WeightDecay);
            if (_resumed is not null)
            {
                PretrainingCheckpoint.Restore(PretrainingCheckpoint.Find(_output)!, _model!, _optimizer, _parameterNames);
            }

            return TrainAndExport();
        }

        /// <summary>A new run: a model from scratch (and its tokenizer) or from a pretrained checkpoint.</summary>
        private void Start()
        {
            if (PretrainingCheckpoint.Find(_output) is { } existing)
            {
                var step = TryReadStep(existing);
                throw new InvalidOperationException(
                    $"'{_output}' already holds a pretraining checkpoint{step}. Resume it ({nameof(PretrainingOptions.Resume)}), or write to another output folder.");
            }

            Directory.CreateDirectory(_output);
            PretrainingCheckpoint.RemovePartial(_output);
            TransformerConfig config;
            if (_options.From is { } from)
            {
                var folder = ModelLocator.Resolve(from, cancellationToken: _cancellation);
                config = TransformerConfig.FromFolder(folder);
                CheckFamily(config, folder);
                _tokenizer = TransformerTokenizer.FromFolder(folder);
                CheckTokenizer(_tokenizer, folder);
                var limit = Math.Min(_tokenizer.ModelMaxLength, PretrainedModelFolder.PositionLimit(config));
                _maxLength = _options.MaxLength ?? Math.Min(ContinuedMaxLength, limit);
                if (_maxLength > limit)
                {
                    throw new ArgumentOutOfRangeException(nameof(PretrainingOptions.MaxLength), _maxLength,
                        $"MaxLength {_maxLength} is longer than the {limit} tokens the model in '{folder}' reads.");
                }

                manual_seed(_options.Seed);
                _model = TransformerModels.CreateForLanguageModeling(config);
                _loadReport = TransformerModels.LoadFromFolder(_model, folder)
                    ?? throw new InvalidDataException($"'{folder}' has no weights (model.safetensors or pytorch_model.bin) to continue from. To pretrain from scratch, leave out {nameof(PretrainingOptions.From)}.");
            }
            else
            {
                var size = _options.Size;
                _maxLength = _options.MaxLength ?? size.MaxPositions;
                if (_maxLength > size.MaxPositions)
                {
                    throw new ArgumentOutOfRangeException(nameof(PretrainingOptions.MaxLength), _maxLength,
                        $"MaxLength {_maxLength} is longer than the {size.MaxPositions} positions of the {size.Name} preset.");
                }

                _tokenizer = _options.Tokenizer is { } tokenizerFolder ? TransformerTokenizer.FromFolder(tokenizerFolder) : TrainTokenizer(size);
                _trainedTokenizer = _options.Tokenizer is null;
                CheckTokenizer(_tokenizer, _options.Tokenizer ?? "the trained vocabulary");
                config = size.CreateConfig(_tokenizer);
                manual_seed(_options.Seed);
                _model = TransformerModels.CreateForLanguageModeling(config);
            }

            _config = PretrainedModelFolder.ConfigJson(config);
        }

        /// <summary>A resumed run: everything from the checkpoint, after checking it is intact and made with the same options and inputs.</summary>
        private void Resume()
        {
            var folder = PretrainingCheckpoint.Find(_output)
                ?? throw new InvalidOperationException(
                    $"There is no checkpoint to resume in '{_output}' (no {PretrainingCheckpoint.FolderName}/{PretrainingCheckpoint.StateFile}). Start the run without resuming.");
            var state = PretrainingCheckpoint.ReadState(folder);
            CheckSameRun(state);
            var config = TransformerConfig.FromFolder(folder);
            CheckFamily(config, folder);
            _tokenizer = TransformerTokenizer.FromFolder(folder);
            _model = TransformerModels.CreateForLanguageModeling(config);
            _config = PretrainedModelFolder.ConfigJson(config);
            _maxLength = state.MaxLength;
            _trainedTokenizer = state.TrainedTokenizer;
            _resumed = state;
        }

        private PretrainingResult TrainAndExport()
        {
            var corpus = new PretrainingCorpus(_inputFiles, _tokenizer, _options.Kind, _maxLength, _options.ValidationFiles is null ? _options.HoldOutEvery : 0);
            var (validation, trainingSequences) = ReadCorpus(corpus, countTraining: _options.Steps is null && _resumed is null);
            var totalSteps = _resumed?.TotalSteps ?? _options.Steps ?? checked((int)(_options.Epochs.GetValueOrDefault(1) * ((trainingSequences + _options.BatchSize - 1) / _options.BatchSize)));
            if (trainingSequences == 0 && _options.Steps is null && _resumed is null)
            {
                throw NoTrainingText();
            }

            var loop = new TrainingLoop(this, validation, totalSteps);
            loop.Train(corpus);

            var model = _model!;
            var epochsBegun = loop.EpochsBegun;
            _progress?.Report(new PretrainingProgress(PretrainingStage.Exporting, loop.Step, totalSteps, epochsBegun, loop.AverageRecentLoss, loop.Rate, 0));
            model.eval();
            var result = new PretrainingResult(model, Export(loop.Step, epochsBegun, loop.History, validation.Count), _output)
            {
                Kind = _options.Kind,
                ParameterCount = model.parameters().Sum(p => p.numel()),
                MaxLength = _maxLength,
                LearningRate = _learningRate,
                Steps = loop.Step,
                Epochs = epochsBegun,
                TrainingSequences = _options.Steps is null && _resumed is null ? trainingSequences : null,
                TrainingTokens = loop.TokensSeen,
                TokensPerSecond = loop.SessionTokensPerSecond,
                TrainingTime = TimeSpan.FromSeconds(loop.TrainingSeconds),
                ValidationSequences = validation.Count,
                InitialValidationLoss = loop.History.FirstOrDefault(p => p.Step == 0)?.Loss,
                ValidationLoss = loop.History.Count > 0 ? loop.History[^1].Loss : null,
                ResumedFromStep = _resumed?.Step,
                LoadReport = _loadReport,
                TrainedTokenizer = _trainedTokenizer,
            };
            _handedOver = true;
            return result;
        }

        /// <summary>
        /// One optimiser step in one dispose scope; its random draws are seeded by the step's number. A NaN or infinite
        /// loss or gradient norm stops the run before the step changes the weights, so no checkpoint or export holds them.
        /// </summary>
        private (double Loss, long Tokens) TrainStep(List<int[]> rows, int step, int totalSteps, int epoch, double learningRate)
        {
            var model = _model!;
            var optimizer = _optimizer!;
            using var scope = NewDisposeScope();
            manual_seed(RandomSeeds.Mix(_options.Seed, step));
            var batch = PackedBatch.Collate(rows, _tokenizer.PadTokenId);
            var (sum, count) = Objective(batch);
            var loss = sum / Math.Max(count, 1);
            var lossValue = loss.item<float>();
            if (!float.IsFinite(lossValue))
            {
                throw new TrainingDivergedException("loss", lossValue, step + 1, totalSteps, epoch, _learningRate);
            }

            loss.backward();
            foreach (var group in optimizer.ParamGroups)
            {
                group.LearningRate = learningRate;
            }

            // Clipping measures the norm anyway; without clipping, a bad update shows in the next step's loss, and the
            // last step's in the weights checked before the export.
            if (_options.MaxGradNorm > 0)
            {
                var norm = nn.utils.clip_grad_norm_(model.parameters(), _options.MaxGradNorm);
                if (!double.IsFinite(norm))
                {
                    throw new TrainingDivergedException("gradient norm", norm, step + 1, totalSteps, epoch, _learningRate);
                }
            }

            optimizer.step();
            optimizer.zero_grad();
            return (lossValue, batch.RealTokens);
        }

        private (Tensor Sum, long Count) Objective(PackedBatch batch) => IsEncoder
            ? LanguageModelingLoss.MaskedLanguageModeling(_model!, batch, _options.MaskProbability, _tokenizer.MaskTokenId!.Value,
                [_tokenizer.ClsTokenId!.Value, _tokenizer.SepTokenId!.Value, _tokenizer.PadTokenId])
            : LanguageModelingLoss.CausalLanguageModeling(_model!, batch);

        /// <summary>Mean loss per predicted token over the held-out sequences, in evaluation mode; the masks are the same at every measurement.</summary>
        private double ValidationLoss(List<int[]> sequences)
        {
            var model = _model!;
            model.eval();
            try
            {
                using var _ = no_grad();
                double sum = 0;
                long count = 0;
                for (var start = 0; start < sequences.Count; start += _options.BatchSize)
                {
                    _cancellation.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    manual_seed(RandomSeeds.Mix(RandomSeeds.Mix(_options.Seed, ValidationSalt), start));
                    var batch = PackedBatch.Collate(sequences.GetRange(start, Math.Min(_options.BatchSize, sequences.Count - start)), _tokenizer.PadTokenId);
                    var (loss, predicted) = Objective(batch);
                    sum += loss.item<float>();
                    count += predicted;
                }

                return count == 0 ? double.NaN : sum / count;
            }
            finally
            {
                model.train();
            }
        }

        /// <summary>
        /// One pass that collects the held-out sequences (stopping early once it has enough, unless it must also count
        /// the training sequences to plan a run given in epochs).
        /// </summary>
        private (List<int[]> Validation, long TrainingSequences) ReadCorpus(PretrainingCorpus corpus, bool countTraining)
        {
            var validation = new List<int[]>();
            long training = 0;
            var wanted = _options.MaxValidationSequences;
            if (!countTraining && wanted == 0)
            {
                return (validation, 0);
            }

            var bytes = BytesProgress(PretrainingStage.ReadingCorpus, corpus.TotalBytes);
            if (_options.ValidationFiles is { } files)
            {
                var held = new PretrainingCorpus(files, _tokenizer, _options.Kind, _maxLength, holdOutEvery: 0);
                validation.AddRange(held.Sequences(null, _cancellation).Take(wanted));
                if (countTraining)
                {
                    training = corpus.TrainingSequences(bytes, _cancellation).LongCount();
                }

                return (validation, training);
            }

            long index = 0;
            foreach (var sequence in corpus.Sequences(bytes, _cancellation))
            {
                if (!corpus.IsHeldOut(index++))
                {
                    training++;
                }
                else if (validation.Count < wanted)
                {
                    validation.Add(sequence);
                }
                else if (!countTraining)
                {
                    break;
                }
            }

            return (validation, training);
        }

        /// <summary>An epoch's sequences after skipping those already trained on, and the first one due.</summary>
        private (IEnumerator<int[]> Sequences, int[]? Next) OpenEpoch(PretrainingCorpus corpus, int epoch, long skip)
        {
            // Reading goes on as the epoch trains; only the skipping is reported.
            var skipping = skip > 0;
            var bytes = _progress is null || !skipping ? null : new SynchronousProgress<long>(read =>
            {
                if (skipping)
                {
                    _progress.Report(new PretrainingProgress(PretrainingStage.FastForwarding, 0, 0, epoch + 1, double.NaN, 0, 0, read, corpus.TotalBytes));
                }
            });
            var sequences = corpus.Epoch(epoch, _options.Seed, _options.ShuffleBuffer, bytes, _cancellation).GetEnumerator();
            for (long i = 0; i < skip; i++)
            {
                if (!sequences.MoveNext())
                {
                    sequences.Dispose();
                    throw new InvalidOperationException(
                        $"The checkpoint had trained on {skip} sequences of epoch {epoch + 1}, but the input now has fewer: it is not the text the run started with.");
                }
            }

            skipping = false;
            if (sequences.MoveNext())
            {
                return (sequences, sequences.Current);
            }

            sequences.Dispose();
            throw NoTrainingText();
        }

        private InvalidDataException NoTrainingText() => new(
            $"The input ({Describe(_inputFiles)}) holds no text to train on{(_options.ValidationFiles is null ? $" once every {_options.HoldOutEvery}th sequence is held out for validation" : string.Empty)}: give more text{(_options.ValidationFiles is null ? " or validation files" : string.Empty)}.");

        private SynchronousProgress<long>? BytesProgress(PretrainingStage stage, long total) => _progress is null ? null
            : new SynchronousProgress<long>(read => _progress.Report(new PretrainingProgress(stage, 0, 0, 0, double.NaN, 0, 0, read, total)));

        private TransformerTokenizer TrainTokenizer(ModelSize size)
        {
            var folder = Path.Combine(_output, $".tokenizer.partial-{Guid.NewGuid():N}");
            try
            {
                var options = new VocabularyTrainingOptions
                {
                    Kind = IsEncoder ? VocabularyKind.WordPiece : VocabularyKind.ByteLevelBpe,
                    VocabularySize = _options.VocabularySize ?? size.VocabularySize,
                    ModelMaxLength = _maxLength,
                };
                var progress = _progress is null ? null : new SynchronousProgress<VocabularyTrainingProgress>(p =>
                    _progress.Report(new PretrainingProgress(PretrainingStage.TrainingTokenizer, 0, 0, 0, double.NaN, 0, 0,
                        p.Completed, p.Total)));
                VocabularyTrainer.Train(_inputFiles, folder, options, progress, _cancellation);
                return TransformerTokenizer.FromFolder(folder);
            }
            finally
            {
                if (Directory.Exists(folder))
                {
                    Directory.Delete(folder, recursive: true);
                }
            }
        }

        private void CheckFamily(TransformerConfig config, string folder)
        {
            var isDecoder = config.Family == ModelFamily.Gpt2;
            if (isDecoder == IsEncoder)
            {
                throw new InvalidDataException(
                    $"The model in '{folder}' is a {config.Family} {(isDecoder ? "decoder" : "encoder")}, but {(IsEncoder ? "an encoder (masked-LM)" : "a decoder (causal-LM)")} pretraining was asked for. Use Kind {(isDecoder ? "Decoder" : "Encoder")} for this model.");
            }
        }

        private void CheckTokenizer(TransformerTokenizer tokenizer, string source)
        {
            if (IsEncoder && (tokenizer.Family == TokenizerFamily.Gpt2 || tokenizer.MaskTokenId is null || tokenizer.ClsTokenId is null || tokenizer.SepTokenId is null))
            {
                throw new InvalidDataException(
                    $"The tokenizer of {source} ({tokenizer.ModelType}) lacks the mask, classifier or separator token that masked-LM pretraining needs. Give a WordPiece tokenizer (VocabularyKind.WordPiece) or none, to train one.");
            }

            if (!IsEncoder && (tokenizer.Family != TokenizerFamily.Gpt2 || tokenizer.EosTokenId is null))
            {
                throw new InvalidDataException(
                    $"The tokenizer of {source} ({tokenizer.ModelType}) is not a GPT-2 byte-level BPE tokenizer with an end-of-text token, which causal-LM pretraining needs. Give one (VocabularyKind.ByteLevelBpe) or none, to train one.");
            }
        }

        private void CheckSameRun(TrainerState state)
        {
            var now = Fingerprint(_options);
            var differences = new List<string>();
            foreach (var (name, value) in now)
            {
                var then = state.Options[name];
                if (!JsonNode.DeepEquals(value, then))
                {
                    differences.Add($"{name} is {Show(value)} now but was {Show(then)}");
                }
            }

            if (differences.Count > 0)
            {
                throw new InvalidOperationException(
                    $"The checkpoint in '{_output}' was made with other options: {string.Join("; ", differences)}. Resume with the options the run started with, or start a new run in another output folder.");
            }

            CheckSameFiles(_inputs, state.Inputs, "input");
            CheckSameFiles(_validationInputs, state.ValidationInputs, "validation");
        }

        private void CheckSameFiles(List<InputFile> now, List<InputFile> then, string what)
        {
            if (now.Count != then.Count)
            {
                throw new InvalidOperationException(
                    $"The checkpoint in '{_output}' was trained on {then.Count} {what} file(s), now {now.Count} are given. Resume with the same files in the same order: {string.Join(", ", then.Select(f => Path.GetFileName(f.Path)))}.");
            }

            for (var i = 0; i < now.Count; i++)
            {
                if (now[i].Sha256 != then[i].Sha256 || now[i].Bytes != then[i].Bytes)
                {
                    throw new InvalidOperationException(
                        $"{char.ToUpperInvariant(what[0])}{what[1..]} file {i + 1}, '{now[i].Path}', is not the file the checkpoint was trained on ('{then[i].Path}', {then[i].Bytes} bytes, SHA-256 {then[i].Sha256[..12]}…). Resume with the same files, unchanged, in the same order.");
                }
            }
        }

        private static string Show(JsonNode? value) => value?.ToJsonString() ?? "unset";

        private static string TryReadStep(string folder)
        {
            try
            {
                var state = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, PretrainingCheckpoint.StateFile)));
                return FormattableString.Invariant($" (step {state?["step"]} of {state?["total_steps"]})");
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
                return string.Empty;
            }
        }

        /// <summary>Writes the HuggingFace folder and its README, and reads the tokenizer back from it.</summary>
        private TransformerTokenizer Export(int step, int epochs, List<ValidationPoint> history, int validationSequences)
        {
            PretrainedModelFolder.WriteModel(_output, _model!, _tokenizer, _config);
            var card = new PretrainedModelCard(Path.GetFileName(_output), _model!, _options, _trainedTokenizer, _maxLength, _learningRate, _inputs, _validationInputs);
            PretrainedModelFolder.WriteAtomically(Path.Combine(_output, "README.md"), card.Write(step, epochs, history, validationSequences));
            return TransformerTokenizer.FromFolder(_output);
        }

        /// <summary>
        /// The training loop and where it stands: step, position in the epoch, tokens and time so far, recent losses
        /// and validation history. A checkpoint saves exactly this (<see cref="State"/>), and a resumed run starts
        /// from it, so an interrupted run ends with the weights of an uninterrupted one.
        /// </summary>
        private sealed class TrainingLoop(Run run, List<int[]> validation, int totalSteps)
        {
            private readonly int _warmupSteps = (int)Math.Ceiling(totalSteps * run._options.WarmupRatio);
            private readonly long _tokensBefore = run._resumed?.TokensSeen ?? 0;
            private readonly double _secondsBefore = run._resumed?.TrainingSeconds ?? 0;
            private readonly Queue<double> _recent = new(run._resumed?.RecentLosses ?? []);
            private readonly Stopwatch _clock = new();
            private (int Epoch, long InEpoch) _position = (run._resumed?.Epoch ?? 0, run._resumed?.SequencesInEpoch ?? 0L);
            private int _lastCheckpoint = run._resumed?.Step ?? -1;
            private long _sessionTokens;

            public int Step { get; private set; } = run._resumed?.Step ?? 0;

            public double Rate { get; private set; }

            public List<ValidationPoint> History { get; } = run._resumed?.Validation.ToList() ?? [];

            public double AverageRecentLoss => _recent.Count == 0 ? double.NaN : _recent.Average();

            public int EpochsBegun => _position.InEpoch == 0 ? _position.Epoch : _position.Epoch + 1;

            public long TokensSeen => _tokensBefore + _sessionTokens;

            public double TrainingSeconds => _secondsBefore + _clock.Elapsed.TotalSeconds;

            public double SessionTokensPerSecond => _clock.Elapsed.TotalSeconds > 0 ? _sessionTokens / _clock.Elapsed.TotalSeconds : 0;

            /// <summary>Trains to the last step, validating and checkpointing on the way; a cancelled run keeps a checkpoint of what it finished.</summary>
            public void Train(PretrainingCorpus corpus)
            {
                var options = run._options;
                run._model!.train();
                IEnumerator<int[]>? epoch = null;
                int[]? pending = null;
                try
                {
                    if (Step == 0)
                    {
                        Validate();
                    }

                    if (Step < totalSteps)
                    {
                        (epoch, pending) = run.OpenEpoch(corpus, _position.Epoch, _position.InEpoch);
                    }

                    while (Step < totalSteps)
                    {
                        run._cancellation.ThrowIfCancellationRequested();
                        var rows = new List<int[]>(options.BatchSize);
                        while (rows.Count < options.BatchSize && pending is not null)
                        {
                            rows.Add(pending);
                            pending = epoch!.MoveNext() ? epoch.Current : null;
                        }

                        _clock.Start();
                        var (loss, tokens) = run.TrainStep(rows, Step, totalSteps, _position.Epoch + 1,
                            Rate = FineTuner.LearningRate(Step, totalSteps, _warmupSteps, run._learningRate));
                        _clock.Stop();
                        Step++;
                        _sessionTokens += tokens;
                        _recent.Enqueue(loss);
                        if (_recent.Count > LossWindow)
                        {
                            _recent.Dequeue();
                        }

                        Report(PretrainingStage.Training);
                        var epochEnded = pending is null;
                        _position = epochEnded ? (_position.Epoch + 1, 0) : (_position.Epoch, _position.InEpoch + rows.Count);
                        if (Step == totalSteps)
                        {
                            break;
                        }

                        if (epochEnded || (options.EvaluateEvery > 0 && Step % options.EvaluateEvery == 0))
                        {
                            Validate();
                        }

                        if (options.CheckpointEvery > 0 && Step % options.CheckpointEvery == 0)
                        {
                            Checkpoint();
                        }

                        if (epochEnded)
                        {
                            epoch!.Dispose();
                            (epoch, pending) = run.OpenEpoch(corpus, _position.Epoch, 0);
                        }
                    }

                    Validate();
                    if (_lastCheckpoint != Step)
                    {
                        Checkpoint();
                    }
                }
                catch (OperationCanceledException) when (Step > _lastCheckpoint && Step > 0)
                {
                    // Keep what was trained: the run resumes from the last finished step.
                    Checkpoint();
                    throw;
                }
                finally
                {
                    epoch?.Dispose();
                }
            }

            private TrainerState State() => new()
            {
                Step = Step,
                TotalSteps = totalSteps,
                Epoch = _position.Epoch,
                SequencesInEpoch = _position.InEpoch,
                TokensSeen = TokensSeen,
                TrainingSeconds = TrainingSeconds,
                MaxLength = run._maxLength,
                Options = Fingerprint(run._options),
                Inputs = run._inputs,
                ValidationInputs = run._validationInputs,
                RecentLosses = [.. _recent],
                Validation = History,
                TrainedTokenizer = run._trainedTokenizer,
                LoadReport = run._loadReport?.ToString() ?? run._resumed?.LoadReport,
            };

            private void Report(PretrainingStage stage, double? validationLoss = null) => run._progress?.Report(new PretrainingProgress(
                stage, Step, totalSteps, _position.Epoch + 1, AverageRecentLoss, Rate,
                _clock.Elapsed.TotalSeconds > 0 ? _sessionTokens / _clock.Elapsed.TotalSeconds : 0,
                ValidationLoss: validationLoss, ValidationPerplexity: validationLoss is double v ? Math.Exp(v) : null));

            private void Validate()
            {
                if (validation.Count == 0 || (History.Count > 0 && History[^1].Step == Step))
                {
                    return;
                }

                var loss = run.ValidationLoss(validation);
                History.Add(new ValidationPoint(Step, loss));
                Report(PretrainingStage.Validated, loss);
            }

            private void Checkpoint()
            {
                // Without clipping no gradient norm is checked, and the last step's update by no later loss.
                FineTuner.CheckWeightsFinite(run._model!, Step, totalSteps, Math.Max(1, EpochsBegun), run._learningRate);
                PretrainingCheckpoint.Write(run._output, run._model!, run._tokenizer, run._config, run._optimizer!, run._parameterNames, State());
                _lastCheckpoint = Step;
                Report(PretrainingStage.Checkpointed);
            }
        }

        private static string Describe(IReadOnlyList<string> files) =>
            files.Count <= 3 ? string.Join(", ", files.Select(Path.GetFileName)) : $"{files.Count} files";

        public void Dispose()
        {
            _optimizer?.Dispose();
            if (!_handedOver)
            {
                _model?.Dispose();
            }
        }
    }

    /// <summary>Reports in place: <see cref="Progress{T}"/> would post to the thread pool and reorder the reports.</summary>
    private sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
