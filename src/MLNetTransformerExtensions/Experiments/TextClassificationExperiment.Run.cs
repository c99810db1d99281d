using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Experiments;
// The search itself: one run's state and trial loop, the monitor that stops losing or overrunning trials, and the
// stream that measures a model's saved size. Kept apart from the experiment's surface (checks, data splits).
public sealed partial class TextClassificationExperiment
{
    /// <summary>One experiment's run: the trials so far, the best, the clock and the cost model.</summary>
    private sealed class RunState(
        TextClassificationExperiment owner, IReadOnlyList<ExperimentCandidate> candidates, ITransformer keyMap, IDataView keyedTraining,
        List<(IDataView Train, IDataView Validation)> splits, bool crossValidated, IReadOnlyList<string> classNames,
        CancellationTokenSource stop, CancellationTokenSource budget, long started, ExperimentData data)
    {
        private readonly TextClassificationExperimentSettings _s = owner._settings;
        private readonly List<TrialResult> _trials = [];
        private readonly CostModel _costs = new();
        private readonly long _trainRows = Count(splits[0].Train);
        private readonly long _validationRows = Count(splits[0].Validation);
        private TrialResult? _best;
        private ITransformer? _bestModel;
        private TrialPlan? _bestPlan;

        private TimeProvider Time => _s.TimeProvider;

        public void Run()
        {
            var random = new Random(_s.Seed);
            var singleRound = _s.MaxTrials is null && _s.MaxExperimentTime is null;
            var ranInRound = new Dictionary<int, bool>();
            foreach (var plan in SearchStrategy.Plan(candidates, _trainRows, random, Prepare, Compare, singleRound, BracketWidth))
            {
                if (stop.IsCancellationRequested || TrialLimitReached())
                {
                    break;
                }

                // A whole round in which nothing fitted the time left: later rounds will not fit either.
                if (plan.Round > 0 && !ranInRound.GetValueOrDefault(plan.Round - 1))
                {
                    break;
                }

                if (!Fits(plan))
                {
                    continue;
                }

                ranInRound[plan.Round] = true;
                RunTrial(plan);
            }

            if (crossValidated && _bestPlan is not null)
            {
                Refit(_bestPlan);
            }
        }

        public TextClassificationExperimentResult Finish()
        {
            if (_best is null || _bestModel is null)
            {
                if (_s.CancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException("The experiment was cancelled before any trial completed.", _s.CancellationToken);
                }

                var errors = _trials.Where(t => t.Error is not null).Take(3).Select(t => $"{t.Candidate}: {t.Error}").ToList();
                throw new InvalidOperationException(
                    _trials.Count == 0
                        ? "No trial could run: the time budget is too small for the cheapest candidate. Give more time or fewer rows."
                        : $"None of the {_trials.Count} trials completed. {string.Join(" ", errors)}");
            }

            return new TextClassificationExperimentResult(_trials, _best, _bestModel, classNames, _s.OptimizingMetric,
                Time.GetElapsedTime(started), budget.IsCancellationRequested || _s.CancellationToken.IsCancellationRequested);
        }

        private bool TrialLimitReached() => _s.MaxTrials is { } max && _trials.Count >= max;

        private int Compare(TrialResult a, TrialResult b)
        {
            var lower = TrialMetrics.LowerIsBetter(_s.OptimizingMetric);
            var order = a.Metric!.Value.CompareTo(b.Metric!.Value);
            return lower ? order : -order;
        }

        /// <summary>
        /// The widest bracket (configurations per expensive candidate) whose estimated cost fits the time left; the
        /// widest without a time limit, so trial-limited runs never depend on the clock.
        /// </summary>
        private int BracketWidth(IReadOnlyList<ExperimentCandidate> expensive, IReadOnlyList<double> rungs)
        {
            if (_s.MaxExperimentTime is not { } limit)
            {
                return SearchStrategy.MaxConfigurationsPerCandidate;
            }

            var left = limit - Time.GetElapsedTime(started);
            for (var width = SearchStrategy.MaxConfigurationsPerCandidate; width > 1; width--)
            {
                if (_costs.EstimateBracket(expensive, rungs, width, _trainRows, _validationRows, splits.Count) * CostModel.SafetyFactor <= left)
                {
                    return width;
                }
            }

            return 1;
        }

        private bool Fits(TrialPlan plan)
        {
            if (_s.MaxExperimentTime is not { } limit)
            {
                return true;
            }

            var left = limit - Time.GetElapsedTime(started);
            var estimate = _costs.Estimate(plan, _trainRows, _validationRows, splits.Count);
            return estimate * CostModel.SafetyFactor <= left;
        }

        /// <summary>Prepares a candidate; a failure is recorded as a failed trial and the candidate leaves the search.</summary>
        private bool Prepare(ExperimentCandidate candidate)
        {
            if (stop.IsCancellationRequested || TrialLimitReached())
            {
                return false;
            }

            var clock = Time.GetTimestamp();
            try
            {
                candidate.Prepare(data, stop.Token);
                return true;
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                Record(new TrialResult
                {
                    TrialNumber = _trials.Count + 1,
                    Candidate = candidate.Name,
                    Hyperparameters = Hyperparameters.Empty,
                    DataFraction = 0,
                    Status = TrialStatus.Failed,
                    Duration = Time.GetElapsedTime(clock),
                    Error = $"could not prepare the candidate: {e.Message}",
                    Exception = e,
                });
                return false;
            }
            catch (Exception)
            {
                return false;
            }
        }

        private void Record(TrialResult result)
        {
            _trials.Add(result);
            _s.Progress?.Report(result);
        }

        private void RunTrial(TrialPlan plan)
        {
            var number = _trials.Count + 1;
            var clock = Time.GetTimestamp();
            var left = _s.MaxExperimentTime is { } limit ? limit - Time.GetElapsedTime(started) : (TimeSpan?)null;
            var running = new TrialResult
            {
                TrialNumber = number,
                Candidate = plan.Candidate.Name,
                Hyperparameters = plan.Hyperparameters,
                DataFraction = plan.DataFraction,
                Status = TrialStatus.Running,
            };
            _s.Progress?.Report(running);

            using var trial = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            var monitor = new TrialMonitor(trial, BestAccuracyAt(plan.DataFraction), Time, left);
            var sampler = new MemorySampler();
            ITransformer? model = null;
            TrialResult result;
            try
            {
                var context = new MLContext(seed: _s.Seed);
                using var cancelContext = ContextCancellation.CancelOn(context, trial.Token);
                var foldMetrics = new List<TrialMetrics>();
                double trainSeconds = 0, scoreSeconds = 0, trainRowEpochs = 0, scoredRows = 0;
                for (var fold = 0; fold < splits.Count; fold++)
                {
                    trial.Token.ThrowIfCancellationRequested();
                    var (train, validation) = splits[fold];
                    var part = plan.DataFraction < 1 ? Subset(context, train, plan.DataFraction) : train;
                    var fitClock = Time.GetTimestamp();
                    var fitted = Fit(context, plan, part, crossValidated ? null : validation, trial.Token, monitor);
                    trainSeconds += Time.GetElapsedTime(fitClock).TotalSeconds;
                    trainRowEpochs += Math.Max(1, _trainRows * plan.DataFraction) * plan.Candidate.Epochs(plan.Hyperparameters);
                    var scoreClock = Time.GetTimestamp();
                    var (metrics, rows) = ExperimentMetrics.Evaluate(context, fitted.Transform(validation), _s.LabelKeyColumnName, _s.PredictedLabelKeyColumnName, classNames.Count);
                    scoreSeconds += Time.GetElapsedTime(scoreClock).TotalSeconds;
                    scoredRows += rows;
                    foldMetrics.Add(metrics);
                    if (model is null)
                    {
                        model = keyMap.Append(fitted);
                    }
                    else
                    {
                        DisposeModel(fitted);
                    }
                }

                var mean = ExperimentMetrics.Mean(foldMetrics);
                _costs.Record(plan.Candidate, trainSeconds / trainRowEpochs, scoreSeconds / Math.Max(1, scoredRows));
                result = running with
                {
                    Status = TrialStatus.Completed,
                    Metric = mean.Get(_s.OptimizingMetric),
                    Metrics = mean,
                    ScoringRowsPerSecond = scoreSeconds > 0 ? scoredRows / scoreSeconds : null,
                    ModelSizeBytes = ModelSize(context, model!),
                };
            }
            catch (Exception e) when (trial.IsCancellationRequested)
            {
                if (monitor.SecondsPerStep is { } pace && splits.Count == 1)
                {
                    // The pace of the steps so far is a better guess for this candidate's next trials than any prior.
                    var rowEpochs = Math.Max(1, _trainRows * plan.DataFraction) * plan.Candidate.Epochs(plan.Hyperparameters);
                    _costs.RecordTraining(plan.Candidate, pace * monitor.TotalSteps / rowEpochs);
                }

                result = running with
                {
                    Status = TrialStatus.Cancelled,
                    Error = monitor.Reason
                        ?? (_s.CancellationToken.IsCancellationRequested ? "the experiment was cancelled"
                        : budget.IsCancellationRequested ? "the time budget ran out" : e.Message),
                };
            }
            catch (Exception e)
            {
                result = running with { Status = TrialStatus.Failed, Error = $"{e.GetType().Name}: {e.Message}", Exception = e };
            }
            finally
            {
                sampler.Dispose();
            }

            result = result with { Duration = Time.GetElapsedTime(clock), PeakMemoryBytes = sampler.PeakBytes };
            plan.Result = result;
            if (result.Status == TrialStatus.Completed && (_best is null || Compare(result, _best) < 0))
            {
                DisposeModel(_bestModel);
                (_best, _bestModel, _bestPlan) = (result, model, plan);
                model = null;
            }

            DisposeModel(model);
            ReleaseMemory();
            Record(result);
        }

        private ITransformer Fit(MLContext context, TrialPlan plan, IDataView train, IDataView? validation, CancellationToken token, IProgress<TrainingProgress>? monitor)
        {
            var setup = new TrialSetup
            {
                LabelKeyColumnName = _s.LabelKeyColumnName,
                TextColumnName = _s.TextColumnName,
                SecondTextColumnName = _s.SecondTextColumnName,
                PredictedLabelKeyColumnName = _s.PredictedLabelKeyColumnName,
                Hyperparameters = plan.Hyperparameters,
                Seed = _s.Seed,
                ValidationSet = validation,
                CancellationToken = token,
                TrainingProgress = monitor,
            };
            var pipeline = plan.Candidate.CreateTrainer(context, setup)
                .Append(context.Transforms.Conversion.MapKeyToValue("PredictedLabel", _s.PredictedLabelKeyColumnName));
            return pipeline.Fit(train);
        }

        /// <summary>With cross-validation, the best configuration is fitted again on all training rows (when the budget allows); otherwise its first fold's model stays.</summary>
        private void Refit(TrialPlan plan)
        {
            var refit = new TrialPlan(plan.Candidate, plan.Hyperparameters, 1, plan.Round);
            if (stop.IsCancellationRequested || !Fits(refit))
            {
                return;
            }

            using var trial = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
            try
            {
                var context = new MLContext(seed: _s.Seed);
                using var cancelContext = ContextCancellation.CancelOn(context, trial.Token);
                var fitted = Fit(context, refit, keyedTraining, null, trial.Token, null);
                DisposeModel(_bestModel);
                _bestModel = keyMap.Append(fitted);
            }
            catch (Exception) when (trial.IsCancellationRequested)
            {
                // Out of time: the first fold's model stays the result.
            }

            ReleaseMemory();
        }

        private double? BestAccuracyAt(double fraction) =>
            _trials.Where(t => t.Status == TrialStatus.Completed && t.DataFraction == fraction).Select(t => t.Metrics!.MicroAccuracy).DefaultIfEmpty().Max() is var best && best > 0 ? best : null;

        private IDataView Subset(MLContext context, IDataView train, double fraction)
        {
            // Shuffled first: data files are often sorted by label, and the first rows would then hold one class.
            var rows = Count(train);
            var shuffled = context.Data.ShuffleRows(train, seed: _s.Seed, shufflePoolSize: (int)Math.Min(rows, 1_000_000));
            return context.Data.TakeRows(shuffled, Math.Max(1, (long)Math.Round(rows * fraction)));
        }

        private static long? ModelSize(MLContext context, ITransformer model)
        {
            using var counter = new CountingStream();
            try
            {
                context.Model.Save(model, null, counter);
                return counter.Length;
            }
            catch (Exception e) when (e is NotSupportedException or InvalidOperationException or IOException)
            {
                return null;
            }
        }

        private static void ReleaseMemory()
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            NativeHeap.Trim();
        }
    }

    /// <summary>
    /// Watches a transformer trial's steps and stops it early in two cases: its validation accuracy after an epoch is
    /// more than <see cref="LosingMargin"/> below the best completed trial trained on the same share of the data (more
    /// epochs rarely close such a gap), or, with a time budget, its pace so far says it cannot finish in the time left
    /// (the cost model's guess was wrong, or the machine got busy). Either way the time goes to the next trial.
    /// </summary>
    private sealed class TrialMonitor(CancellationTokenSource trial, double? bestAccuracy, TimeProvider time, TimeSpan? timeLeft) : IProgress<TrainingProgress>
    {
        private readonly long _started = time.GetTimestamp();
        private long _firstStepTime;
        private int _firstStep = -1;

        public string? Reason { get; private set; }

        /// <summary>Seconds per optimiser step, measured from the first step reported (so loading the model is not counted); null until known.</summary>
        public double? SecondsPerStep { get; private set; }

        /// <summary>Optimiser steps the trial planned.</summary>
        public int TotalSteps { get; private set; }

        public double Seconds => time.GetElapsedTime(_started).TotalSeconds;

        public void Report(TrainingProgress value)
        {
            if (Reason is not null || value.TotalSteps <= 0)
            {
                return;
            }

            TotalSteps = value.TotalSteps;
            if (_firstStep < 0)
            {
                (_firstStep, _firstStepTime) = (value.Step, time.GetTimestamp());
            }
            else if (value.Step > _firstStep)
            {
                SecondsPerStep = time.GetElapsedTime(_firstStepTime).TotalSeconds / (value.Step - _firstStep);
            }

            if (bestAccuracy is { } best && value.IsEpochEnd && value.Epoch < value.Epochs
                && value.ValidationAccuracy is { } accuracy && accuracy < best - LosingMargin)
            {
                Stop(FormattableString.Invariant($"stopped as clearly losing: validation accuracy {accuracy:0.000} after epoch {value.Epoch} against the best {best:0.000}"));
                return;
            }

            // A few steps in, the pace is known well enough to project the rest of the trial.
            if (timeLeft is { } left && SecondsPerStep is { } pace && value.Step - _firstStep >= Math.Max(3, value.TotalSteps / 20))
            {
                var projected = Seconds + (pace * (value.TotalSteps - value.Step));
                if (projected > left.TotalSeconds)
                {
                    Stop(FormattableString.Invariant($"stopped: at its pace it needs about {projected:0} s, and {left.TotalSeconds:0} s were left"));
                }
            }
        }

        private void Stop(string reason)
        {
            Reason = reason;
            trial.Cancel();
        }
    }

    /// <summary>A write-only stream that only counts bytes, to measure a model file's size without writing it.</summary>
    private sealed class CountingStream : Stream
    {
        private long _length;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => _length;

        public override long Position { get => _length; set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => _length += count;

        public override void Write(ReadOnlySpan<byte> buffer) => _length += buffer.Length;
    }
}
