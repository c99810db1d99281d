using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;
using Microsoft.Extensions.AI;
using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.Tests.Training.Chat;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>
/// The chat classifier end to end against an OpenAI-compatible server on 127.0.0.1, through the real OpenAI client:
/// the request it sends, scores from log-probabilities, the faults it survives, the cache, the concurrency limit, the
/// budgets, cancellation, and save/load without secrets. No test waits on the clock: retries record their delays
/// instead of sleeping, and a timeout fires against a server that never answers.
/// </summary>
[TestClass]
public sealed class ChatClassifierTests
{
    private const string ApiKey = "sk-test-secret-key-0123456789";
    private const string Model = "gpt-test";

    private static readonly string[] Sentiments = ["negative", "positive"];

    /// <summary>The server's classifier: reviews with "great" are positive, the rest negative.</summary>
    private static FakeReply Judge(string text) =>
        text.Contains("great", StringComparison.Ordinal) ? FakeReply.Label("positive", "negative", 0.8) : FakeReply.Label("negative", "positive", 0.9);

    private static List<TopicInput> Reviews(params string[] texts) =>
        [.. texts.Select(t => new TopicInput { Text = t, Label = t.Contains("great", StringComparison.Ordinal) ? "positive" : "negative" })];

    private static readonly List<TopicInput> s_training = Reviews("a great film", "great acting", "a dull plot", "awful sound", "great fun", "boring");

    private static IEstimator<ITransformer> Pipeline(MLContext ml, IChatClient client, ChatClassifierOptions options) =>
        ml.Transforms.Conversion.MapValueToKey("Label", keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByValue)
            .Append(ml.MulticlassClassification.Trainers.ChatClassifier(client, options));

    private static ChatClassifierOptions Options(Action<ChatClassifierOptions>? change = null)
    {
        var options = new ChatClassifierOptions { ModelId = Model };
        change?.Invoke(options);
        return options;
    }

    private static ChatClassifier Inner(ITransformer model) =>
        ((ChatClassificationModel)((IEnumerable<ITransformer>)model).OfType<TextClassificationTransformer>().Single().Classifier).Inner;

    private static List<float[]> Scores(MLContext ml, ITransformer model, IEnumerable<TopicInput> rows)
    {
        var scored = model.Transform(ml.Data.LoadFromEnumerable(rows));
        return [.. scored.GetColumn<VBuffer<float>>("Score").Select(s => s.DenseValues().ToArray())];
    }

    [TestMethod]
    public void ZeroShotAsksForTheLabelsAsAJsonSchemaEnumAndScoresFromLogProbabilities()
    {
        using var server = new FakeChatServer((text, _) => Judge(text));
        using var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(s_training);

        var model = Pipeline(ml, client, Options()).Fit(data);
        Assert.AreEqual(0, server.Requests, "Fit sends no request");
        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(data));

        Assert.AreEqual(1.0, metrics.MicroAccuracy);
        Assert.AreEqual(6, server.Requests);
        var request = server.Received.First();
        Assert.AreEqual(Model, request["model"]!.GetValue<string>());
        Assert.AreEqual(0.0, request["temperature"]!.GetValue<double>());
        Assert.IsTrue(request["logprobs"]!.GetValue<bool>());
        Assert.AreEqual("json_schema", request["response_format"]!["type"]!.GetValue<string>());
        var labels = request["response_format"]!["json_schema"]!["schema"]!["properties"]!["label"]!["enum"]!.AsArray().Select(l => l!.GetValue<string>());
        CollectionAssert.AreEqual(Sentiments, labels.ToArray());
        StringAssert.Contains(request["messages"]![0]!["content"]!.ToJsonString(), "negative, positive");

        var scores = Scores(ml, model, Reviews("great stuff", "dull stuff"));
        Assert.AreEqual(0.8f, scores[0][1], 1e-5f);
        Assert.AreEqual(0.9f, scores[1][0], 1e-5f);

        var usage = model.GetChatUsage();
        Assert.AreEqual(8, usage.Requests);
        Assert.AreEqual(8 * 5, usage.CompletionTokens);
        Assert.IsTrue(usage.PromptTokens > 8, usage.ToString());
        Assert.AreEqual(0, usage.Unparsed + usage.Failed + usage.Retries + usage.CacheHits);
    }

    [TestMethod]
    public void TransientFaultsAreRetriedAndRowsThatNeverSucceedAreReportedNotFatal()
    {
        // First attempts fail in every way a service can; "broken" never recovers; "confused" answers a label not in the set.
        using var server = new FakeChatServer((text, attempt) => text switch
        {
            _ when text.StartsWith("limited", StringComparison.Ordinal) && attempt == 0 => FakeReply.Status(429, retryAfter: "7"),
            _ when text.StartsWith("crashed", StringComparison.Ordinal) && attempt == 0 => FakeReply.Status(500),
            _ when text.StartsWith("slow", StringComparison.Ordinal) && attempt == 0 => FakeReply.Hang,
            _ when text.StartsWith("garbled", StringComparison.Ordinal) && attempt == 0 => FakeReply.Malformed,
            _ when text.StartsWith("broken", StringComparison.Ordinal) => FakeReply.Status(503),
            _ when text.StartsWith("confused", StringComparison.Ordinal) => FakeReply.Content("{\"label\":\"neutral\"}"),
            _ => Judge(text),
        });
        using var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
        var ml = new MLContext(seed: 1);
        var model = Pipeline(ml, client, Options(o =>
        {
            o.RequestTimeout = TimeSpan.FromMilliseconds(300);
            o.MaximumRetries = 2;
            o.RetryBaseDelay = TimeSpan.FromSeconds(2);
        })).Fit(ml.Data.LoadFromEnumerable(s_training));
        var delays = new ConcurrentBag<TimeSpan>();
        Inner(model).Sender.Delay = (delay, _) =>
        {
            delays.Add(delay);
            return Task.CompletedTask;
        };

        var scores = Scores(ml, model, Reviews("limited but great", "crashed and dull", "slow but great", "garbled and dull", "broken", "confused", "great"));

        Assert.AreEqual(1, scores[0].ToList().IndexOf(scores[0].Max()));
        Assert.AreEqual(0, scores[1].ToList().IndexOf(scores[1].Max()));
        Assert.AreEqual(1, scores[2].ToList().IndexOf(scores[2].Max()));
        Assert.AreEqual(0, scores[3].ToList().IndexOf(scores[3].Max()));
        CollectionAssert.AreEqual(new[] { 0.5f, 0.5f }, scores[4], "a row whose requests all failed scores uniformly");
        CollectionAssert.AreEqual(new[] { 0.5f, 0.5f }, scores[5], "a label outside the set is unparsed");
        var usage = model.GetChatUsage();
        Assert.AreEqual(1, usage.Failed, usage.ToString());
        Assert.AreEqual(1, usage.Unparsed, usage.ToString());
        Assert.AreEqual(6, usage.Retries, "one each for 429, 500, timeout and malformed; two for the broken row");
        Assert.AreEqual(7 + 6, usage.Requests);
        Assert.AreEqual(2, usage.Problems.Count);
        Assert.IsTrue(usage.Problems.Any(p => p.Contains("HTTP 503", StringComparison.Ordinal)), string.Join("\n", usage.Problems));
        // Retry-After: 7 is honoured; the other faults back off from the base delay, doubling.
        Assert.AreEqual(1, delays.Count(d => d == TimeSpan.FromSeconds(7)), string.Join(", ", delays));
        Assert.AreEqual(4, delays.Count(d => d == TimeSpan.FromSeconds(2)), string.Join(", ", delays));
        Assert.AreEqual(1, delays.Count(d => d == TimeSpan.FromSeconds(4)), string.Join(", ", delays));
    }

    [TestMethod]
    public void UnparsedRepliesStopScoringWhenThePolicySaysThrow()
    {
        using var server = new FakeChatServer((_, _) => FakeReply.Content("I would rather not say"));
        using var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
        var ml = new MLContext(seed: 1);
        var model = Pipeline(ml, client, Options(o => o.UnparsedPolicy = ChatUnparsedPolicy.Throw)).Fit(ml.Data.LoadFromEnumerable(s_training));

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Scores(ml, model, Reviews("great")));
        StringAssert.Contains(error.Message, "I would rather not say");
    }

    [TestMethod]
    public void TheCacheAnswersARepeatedEvaluationWithoutRequestsAndHoldsNoSecret()
    {
        var cache = TestPaths.NewTempDirectory();
        try
        {
            using var server = new FakeChatServer((text, _) => Judge(text));
            using var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(s_training);
            var model = Pipeline(ml, client, Options(o => o.CacheDirectory = cache)).Fit(data);

            var first = ml.MulticlassClassification.Evaluate(model.Transform(data));
            Assert.AreEqual(6, server.Requests);
            var second = ml.MulticlassClassification.Evaluate(model.Transform(data));

            Assert.AreEqual(6, server.Requests, "the second evaluation is answered from the cache");
            Assert.AreEqual(first.LogLoss, second.LogLoss, "cached replies keep their log-probabilities");
            var usage = model.GetChatUsage();
            Assert.AreEqual(6, usage.CacheHits);
            Assert.AreEqual(6, usage.Requests);
            var files = Directory.GetFiles(cache, "*", SearchOption.AllDirectories);
            Assert.HasCount(6, files);
            foreach (var file in files)
            {
                var content = File.ReadAllText(file);
                Assert.IsFalse(content.Contains(ApiKey, StringComparison.Ordinal) || content.Contains(server.BaseUrl.Authority, StringComparison.Ordinal), content);
            }
        }
        finally
        {
            Directory.Delete(cache, recursive: true);
        }
    }

    [TestMethod]
    public void RequestsRunInParallelUpToTheConcurrencyLimit()
    {
        // The server holds every request until three are in flight: a sequential client would wait out its 30 s.
        using var server = new FakeChatServer((text, _) => Judge(text), holdUntilInFlight: 3);
        using var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
        var ml = new MLContext(seed: 1);
        var model = Pipeline(ml, client, Options(o => o.MaximumConcurrency = 3)).Fit(ml.Data.LoadFromEnumerable(s_training));

        Scores(ml, model, Enumerable.Range(0, 12).SelectMany(i => Reviews($"great {i}", $"dull {i}")));

        Assert.AreEqual(24, server.Requests);
        Assert.AreEqual(3, server.MaxInFlight);
    }

    [TestMethod]
    public void BudgetsStopScoringWithAnErrorNamingTheLimit()
    {
        using var server = new FakeChatServer((text, _) => Judge(text));
        using var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
        var ml = new MLContext(seed: 1);
        var model = Pipeline(ml, client, Options(o =>
        {
            o.MaximumRequests = 2;
            o.MaximumConcurrency = 1;
        })).Fit(ml.Data.LoadFromEnumerable(s_training));

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Scores(ml, model, Reviews("great", "dull", "great again")));
        StringAssert.Contains(error.Message, "MaximumRequests = 2");
        Assert.AreEqual(2, server.Requests);
    }

    [TestMethod]
    public void CancellationStopsScoring()
    {
        using var cancellation = new CancellationTokenSource();
        using var server = new FakeChatServer((_, _) => FakeReply.Hang) { OnRequest = _ => cancellation.Cancel() };
        using var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
        var ml = new MLContext(seed: 1);
        var model = Pipeline(ml, client, Options(o =>
        {
            o.CancellationToken = cancellation.Token;
            o.RequestTimeout = TimeSpan.FromMinutes(5);
        })).Fit(ml.Data.LoadFromEnumerable(s_training));

        Assert.Throws<OperationCanceledException>(() => Scores(ml, model, Reviews("great")));
    }

    [TestMethod]
    public void ASavedModelHoldsDemonstrationsButNoSecretAndNeedsAClientAfterLoading()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            using var server = new FakeChatServer((text, _) => Judge(text));
            var path = Path.Combine(work, "chat.zip");
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(s_training);
            using (var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey))
            {
                var trained = Pipeline(ml, client, Options(o => o.ShotsPerClass = 1)).Fit(data);
                ml.Model.Save(trained, data.Schema, path);
            }

            using (var zip = ZipFile.OpenRead(path))
            {
                foreach (var entry in zip.Entries)
                {
                    using var reader = new StreamReader(entry.Open(), Encoding.Latin1);
                    var bytes = reader.ReadToEnd();
                    Assert.IsFalse(bytes.Contains(ApiKey, StringComparison.Ordinal), $"{entry.FullName} holds the key");
                    Assert.IsFalse(bytes.Contains(server.BaseUrl.Authority, StringComparison.Ordinal), $"{entry.FullName} holds the endpoint");
                }
            }

            var fresh = new MLContext(seed: 2);
            var loaded = fresh.Model.Load(path, out _);
            Assert.IsTrue(loaded.HasChatClassifier());
            Assert.AreEqual(Model, loaded.GetChatModelId());
            var error = Assert.ThrowsExactly<InvalidOperationException>(() => Scores(fresh, loaded, Reviews("great")));
            StringAssert.Contains(error.Message, "UseChatClient");

            using var again = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
            loaded.UseChatClient(again);
            var scores = Scores(fresh, loaded, Reviews("great", "dull"));
            Assert.IsTrue(scores[0][1] > 0.5f && scores[1][0] > 0.5f);
            // One demonstration per class: system, two user/assistant pairs, the text.
            var messages = server.Received.Last()["messages"]!.AsArray();
            Assert.AreEqual(6, messages.Count);
            Assert.AreEqual("assistant", messages[2]!["role"]!.GetValue<string>());
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    public void TheBinaryCatalogScoresABooleanLabelWithDescribedLabels()
    {
        using var server = new FakeChatServer((text, _) => text.Contains("great", StringComparison.Ordinal) ? FakeReply.Content("True") : FakeReply.Content("false."));
        using var client = ChatClients.CreateOpenAICompatible(Model, server.BaseUrl, ApiKey);
        var ml = new MLContext(seed: 1);
        var rows = new[] { new SentimentRow { Text = "great", Label = true }, new SentimentRow { Text = "dull", Label = false } };
        var data = ml.Data.LoadFromEnumerable(rows);
        var options = Options(o =>
        {
            o.UseStructuredOutput = false;
            o.LabelDescriptions = new Dictionary<string, string> { ["True"] = "the review is positive", ["False"] = "the review is negative" };
        });

        var model = ml.BinaryClassification.Trainers.ChatClassifier(client, options).Fit(data);
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(data));

        Assert.AreEqual(1.0, metrics.Accuracy);
        var request = server.Received.First();
        Assert.IsNull(request["response_format"], "structured output was turned off");
        StringAssert.Contains(request["messages"]![0]!["content"]!.ToJsonString(), "True: the review is positive");
    }

    [TestMethod]
    public void OptionsAreCheckedWhenTheTrainerIsMade()
    {
        using var client = ChatClients.CreateOpenAICompatible(Model, new Uri("http://127.0.0.1:9/v1/"), ApiKey);
        var trainers = new MLContext().MulticlassClassification.Trainers;
        Assert.ThrowsExactly<ArgumentException>(() => trainers.ChatClassifier(client, new ChatClassifierOptions()));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => trainers.ChatClassifier(client, Options(o => o.MaximumConcurrency = 0)));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => trainers.ChatClassifier(client, Options(o => o.ShotsPerClass = -1)));
    }
}
