using System.ClientModel;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Microsoft.Extensions.AI;

namespace MLNetTransformerExtensions.Training;

/// <summary>A request that failed for good: a permanent error, or a transient one that outlived every retry.</summary>
internal sealed class ChatRequestFailedException(string message, bool transient, Exception inner) : Exception(message, inner)
{
    /// <summary>True when the last failure was transient (the row is reported, the run goes on); false for a permanent error.</summary>
    public bool Transient { get; } = transient;
}

/// <summary>
/// Sends one request with a per-request timeout and retries its transient faults: HTTP 408, 429 and 5xx (waiting what
/// <c>Retry-After</c> says, else an exponential back-off), no answer within the timeout, a dropped connection and a reply
/// body that is not valid JSON. Other errors (a bad key, an unknown model, a rejected request) are permanent.
/// </summary>
/// <remarks>
/// The OpenAI client can retry by itself, but other <see cref="IChatClient"/>s do not, and its retries cover neither a
/// timeout nor a malformed body; <see cref="ChatClients"/> turns its own retries off so that this is the one place.
/// </remarks>
internal sealed class ChatRequestSender(ChatClassifierSettings settings, ChatClassifierUsage usage)
{
    /// <summary>How the sender waits between attempts; tests replace it to record the delays instead of sleeping.</summary>
    public Func<TimeSpan, CancellationToken, Task> Delay { get; set; } = Task.Delay;

    public async Task<ChatResponse> SendAsync(IChatClient client, IList<ChatMessage> messages, ChatOptions options, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            usage.AddRequest();
            string fault;
            TimeSpan? retryAfter = null;
            Exception error;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(settings.RequestTimeout);
            try
            {
                return await client.GetResponseAsync(messages, options, timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                (fault, error) = (string.Create(CultureInfo.InvariantCulture, $"no answer within the timeout of {settings.RequestTimeout.TotalSeconds:0.###} s"), e);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested && IsTransient(e, out fault, out retryAfter))
            {
                error = e;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                throw new ChatRequestFailedException($"The chat service refused the request: {Describe(e)}", transient: false, e);
            }

            if (attempt >= settings.MaximumRetries)
            {
                throw new ChatRequestFailedException($"The request failed {attempt + 1} times; last: {fault}.", transient: true, error);
            }

            usage.AddRetry();
            await Delay(RetryDelay(attempt, retryAfter), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The wait before retry <paramref name="attempt"/> + 1: what the server asked for, else the base delay doubled per
    /// attempt; never more than the maximum.
    /// </summary>
    public TimeSpan RetryDelay(int attempt, TimeSpan? retryAfter)
    {
        var delay = retryAfter ?? TimeSpan.FromTicks((long)Math.Min(settings.RetryBaseDelay.Ticks * Math.Pow(2, attempt), TimeSpan.MaxValue.Ticks / 2.0));
        return delay > settings.MaximumRetryDelay ? settings.MaximumRetryDelay : delay < TimeSpan.Zero ? TimeSpan.Zero : delay;
    }

    /// <summary>Reads <c>retry-after-ms</c> (OpenAI's) or <c>Retry-After</c> (seconds or an HTTP date).</summary>
    public static TimeSpan? ParseRetryAfter(string? milliseconds, string? retryAfter, DateTimeOffset now)
    {
        if (double.TryParse(milliseconds, NumberStyles.Float, CultureInfo.InvariantCulture, out var ms) && ms >= 0)
        {
            return TimeSpan.FromMilliseconds(ms);
        }

        if (double.TryParse(retryAfter, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= 0)
        {
            return TimeSpan.FromSeconds(seconds);
        }

        return DateTimeOffset.TryParse(retryAfter, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date) ? date - now : null;
    }

    private static bool IsTransient(Exception e, out string fault, out TimeSpan? retryAfter)
    {
        retryAfter = null;
        switch (e)
        {
            case ClientResultException result when result.Status is 0 or 408 or 429 or >= 500:
                var response = result.GetRawResponse();
                string? Header(string name) => response is not null && response.Headers.TryGetValue(name, out var value) ? value : null;
                retryAfter = ParseRetryAfter(Header("retry-after-ms"), Header("Retry-After"), DateTimeOffset.UtcNow);
                fault = result.Status == 0 ? $"no response ({e.Message})" : $"HTTP {result.Status}";
                return true;
            case HttpRequestException http when http.StatusCode is null or HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests or >= HttpStatusCode.InternalServerError:
                fault = http.StatusCode is { } status ? $"HTTP {(int)status}" : $"no response ({e.Message})";
                return true;
            case JsonException or FormatException:
                fault = $"a reply that is not valid JSON ({e.Message})";
                return true;
            case IOException:
                fault = $"the connection failed ({e.Message})";
                return true;
            default:
                fault = "";
                return false;
        }
    }

    private static string Describe(Exception e) => e is ClientResultException { Status: > 0 } result ? $"HTTP {result.Status}: {e.Message}" : e.Message;
}
