using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace MLNetTransformerExtensions.Tests.Training.Chat;

/// <summary>What the fake server does with one request.</summary>
internal abstract record FakeReply
{
    /// <summary>Answers <c>{"label": label}</c>, with log-probabilities (when asked) that give the label <paramref name="probability"/> and the runner-up the rest.</summary>
    public static FakeReply Label(string label, string? runnerUp = null, double probability = 0.8) => new Answer(label, runnerUp, probability, null);

    /// <summary>Answers exactly <paramref name="content"/>, without log-probabilities.</summary>
    public static FakeReply Content(string content) => new Answer(null, null, 1, content);

    public static FakeReply Status(int status, string? retryAfter = null) => new Error(status, retryAfter);

    /// <summary>Never answers (until the server stops): the client's timeout must fire.</summary>
    public static FakeReply Hang { get; } = new Silence();

    /// <summary>HTTP 200 with a body that is not JSON.</summary>
    public static FakeReply Malformed { get; } = new Broken();

    internal sealed record Answer(string? LabelText, string? RunnerUp, double Probability, string? Raw) : FakeReply;

    internal sealed record Error(int Code, string? RetryAfter) : FakeReply;

    internal sealed record Silence : FakeReply;

    internal sealed record Broken : FakeReply;
}

/// <summary>
/// An OpenAI-compatible chat server on 127.0.0.1 for tests: <c>POST /v1/chat/completions</c> with <c>response_format</c>
/// and <c>logprobs</c>, its replies scripted per text and attempt, counting requests and the most in flight at once.
/// </summary>
internal sealed class FakeChatServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<string, int, FakeReply> _script;
    private readonly ConcurrentDictionary<string, int> _attempts = new();
    private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;
    private int _maxInFlight;
    private int _requests;

    /// <param name="script">The reply to the user text of a request, given its attempt number (0 for the first).</param>
    /// <param name="holdUntilInFlight">When positive, every request waits until this many are in flight at once (at most 30 s), then all go on.</param>
    public FakeChatServer(Func<string, int, FakeReply> script, int holdUntilInFlight = 0)
    {
        _script = script;
        HoldUntilInFlight = holdUntilInFlight;
        if (holdUntilInFlight <= 0)
        {
            _gate.SetResult();
        }

        var port = FreePort();
        BaseUrl = new Uri($"http://127.0.0.1:{port}/v1/");
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _ = Task.Run(AcceptAsync);
    }

    public Uri BaseUrl { get; }

    public int HoldUntilInFlight { get; }

    public int Requests => Volatile.Read(ref _requests);

    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    /// <summary>Every request body received, in arrival order.</summary>
    public ConcurrentQueue<JsonObject> Received { get; } = new();

    /// <summary>Called with each request's user text as it arrives (before the reply).</summary>
    public Action<string>? OnRequest { get; set; }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        _stop.Dispose();
    }

    /// <summary>The user text of a request: the last message's content, as a string or as text parts.</summary>
    public static string UserText(JsonObject request)
    {
        var content = request["messages"]!.AsArray()[^1]!["content"];
        return content is JsonArray parts ? string.Concat(parts.Select(p => p!["text"]?.GetValue<string>())) : content!.GetValue<string>();
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(context));
        }
    }

    private async Task ServeAsync(HttpListenerContext context)
    {
        var inFlight = Interlocked.Increment(ref _inFlight);
        try
        {
            Interlocked.Increment(ref _requests);
            InterlockedMax(ref _maxInFlight, inFlight);
            if (inFlight >= HoldUntilInFlight)
            {
                _gate.TrySetResult();
            }

            string body;
            using (var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8))
            {
                body = await reader.ReadToEndAsync();
            }

            var request = JsonNode.Parse(body)!.AsObject();
            Received.Enqueue(request);
            var text = UserText(request);
            OnRequest?.Invoke(text);
            var attempt = _attempts.AddOrUpdate(text, 0, (_, n) => n + 1);
            await _gate.Task.WaitAsync(TimeSpan.FromSeconds(30), _stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            var reply = _script(text, attempt);
            switch (reply)
            {
                case FakeReply.Silence:
                    await Task.Delay(Timeout.Infinite, _stop.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                    return;
                case FakeReply.Error error:
                    if (error.RetryAfter is not null)
                    {
                        context.Response.AddHeader("Retry-After", error.RetryAfter);
                    }

                    await Write(context, error.Code, $"{{\"error\":{{\"message\":\"scripted {error.Code}\",\"type\":\"server_error\"}}}}");
                    return;
                case FakeReply.Broken:
                    await Write(context, 200, "{\"id\": \"chatcmpl-broken\", \"choices\": [ {\"message\": ");
                    return;
                case FakeReply.Answer answer:
                    await Write(context, 200, Completion(request, answer).ToJsonString());
                    return;
            }
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException or OperationCanceledException)
        {
            // The client gave up (a timeout) or the server is stopping.
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private static JsonObject Completion(JsonObject request, FakeReply.Answer answer)
    {
        var content = answer.Raw ?? $"{{\"label\":\"{answer.LabelText}\"}}";
        var choice = new JsonObject
        {
            ["index"] = 0,
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content },
            ["finish_reason"] = "stop",
        };
        if (request["logprobs"]?.GetValue<bool>() == true && answer.LabelText is { } label)
        {
            var top = new JsonArray(Token(label, Math.Log(answer.Probability)));
            if (answer.RunnerUp is { } runnerUp)
            {
                top.Add(Token(runnerUp, Math.Log(1 - answer.Probability)));
            }

            JsonObject Plain(string token) => Token(token, 0, new JsonArray(Token(token, 0)));
            var labelToken = Token(label, Math.Log(answer.Probability), top);
            choice["logprobs"] = new JsonObject { ["content"] = new JsonArray(Plain("{\""), Plain("label"), Plain("\":\""), labelToken, Plain("\"}")) };
        }

        var promptTokens = request["messages"]!.AsArray().Sum(m => (m!["content"]?.ToJsonString().Length ?? 0) / 4 + 1);
        return new JsonObject
        {
            ["id"] = "chatcmpl-fake",
            ["object"] = "chat.completion",
            ["created"] = 0,
            ["model"] = request["model"]?.GetValue<string>(),
            ["choices"] = new JsonArray(choice),
            ["usage"] = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = 5, ["total_tokens"] = promptTokens + 5 },
        };
    }

    private static JsonObject Token(string token, double logprob, JsonArray? top = null)
    {
        var json = new JsonObject { ["token"] = token, ["logprob"] = logprob, ["bytes"] = null };
        if (top is not null)
        {
            json["top_logprobs"] = top;
        }

        return json;
    }

    private static async Task Write(HttpListenerContext context, int status, string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        context.Response.ContentLength64 = bytes.Length;
        await context.Response.OutputStream.WriteAsync(bytes);
        context.Response.Close();
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
