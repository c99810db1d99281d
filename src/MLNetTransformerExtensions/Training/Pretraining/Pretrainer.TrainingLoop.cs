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
    private sealed partial class Run
    {
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

                        Report(PretrainingStage.Training, notice: run._precisionNotice);
                        run._precisionNotice = null;
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

            private void Report(PretrainingStage stage, double? validationLoss = null, string? notice = null) => run._progress?.Report(new PretrainingProgress(
                stage, Step, totalSteps, _position.Epoch + 1, AverageRecentLoss, Rate,
                _clock.Elapsed.TotalSeconds > 0 ? _sessionTokens / _clock.Elapsed.TotalSeconds : 0,
                ValidationLoss: validationLoss, ValidationPerplexity: validationLoss is double v ? Math.Exp(v) : null)
            { Notice = notice });

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
                run._mixed?.ToFloat32(); // checkpoints hold float32 weights, whatever the training precision
                FineTuner.CheckWeightsFinite(run._model!, Step, totalSteps, Math.Max(1, EpochsBegun), run._learningRate);
                PretrainingCheckpoint.Write(run._output, run._model!, run._tokenizer, run._config, run._optimizer!, run._parameterNames, State());
                _lastCheckpoint = Step;
                Report(PretrainingStage.Checkpointed);
            }
        }
    }
}
