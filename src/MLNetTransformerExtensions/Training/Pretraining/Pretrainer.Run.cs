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

public static partial class Pretrainer
{
    /// <summary>One session of a run: set-up (fresh or resumed), the data, the loop, checkpoints and the export.</summary>
    private sealed partial class Run : IDisposable
    {
        private readonly IReadOnlyList<string> _inputFiles;
        private readonly string _output;
        private readonly PretrainingOptions _options;
        private readonly IProgress<PretrainingProgress>? _progress;
        private readonly CancellationToken _cancellation;

        private LanguageModel? _model;
        private AdamW? _optimizer;
        private MixedPrecision? _mixed;
        private string? _precisionNotice;
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
            if (TrainingPrecisions.Resolve(_options.Precision, probe: null, out _precisionNotice) == TrainingPrecision.BFloat16)
            {
                // The optimizer steps float32 masters in the same order as the model's parameters, so checkpoints
                // hold the same float32 weights and AdamW state whichever precision wrote them.
                _mixed = new MixedPrecision(_model!);
                _optimizer = FineTuner.CreateOptimizer(_mixed.Decay, _mixed.NoDecay, _learningRate, _options.WeightDecay);
            }
            else
            {
                _optimizer = FineTuner.CreateOptimizer(_model!, _learningRate, _options.WeightDecay);
            }

            if (_resumed is not null)
            {
                // A run killed while checkpointing leaves its partial folder (a whole model's size); nothing reads it.
                PretrainingCheckpoint.RemovePartial(_output);
                PretrainingCheckpoint.Restore(PretrainingCheckpoint.Find(_output)!, _model!, _optimizer, _parameterNames);
                _mixed?.ReadFromModel();
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
            try
            {
                loop.Train(corpus);
            }
            finally
            {
                _mixed?.ToFloat32();
            }

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
            _mixed?.ToBFloat16();
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
            _mixed?.CollectGradients();
            foreach (var group in optimizer.ParamGroups)
            {
                group.LearningRate = learningRate;
            }

            // Clipping measures the norm anyway; without clipping, a bad update shows in the next step's loss, and the
            // last step's in the weights checked before the export.
            if (_options.MaxGradNorm > 0)
            {
                var norm = nn.utils.clip_grad_norm_(_mixed?.Parameters ?? model.parameters(), _options.MaxGradNorm);
                if (!double.IsFinite(norm))
                {
                    throw new TrainingDivergedException("gradient norm", norm, step + 1, totalSteps, epoch, _learningRate);
                }
            }

            optimizer.step();
            optimizer.zero_grad();
            _mixed?.Refresh();
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
            _mixed?.ToFloat32(); // validation measures the float32 masters, so fp32 and bf16 runs' curves compare
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


        private static string Describe(IReadOnlyList<string> files) =>
            files.Count <= 3 ? string.Join(", ", files.Select(Path.GetFileName)) : $"{files.Count} files";

        public void Dispose()
        {
            _optimizer?.Dispose();
            _mixed?.Dispose();
            if (!_handedOver)
            {
                _model?.Dispose();
            }
        }
    }
}
