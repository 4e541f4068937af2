// panva's oidc-provider (OpenID Certified) on loopback: the peer the broker is measured against.
//
//   node server.js PORT
//
// One confidential client `bench` with the authorization-code and refresh-token grants,
// refresh tokens rotated on use, PKCE. The person's login and consent are answered without
// pages: POST /interaction/:uid/auto signs in `bench-user` and grants `openid`, as a real login
// page would after the person submits it. After that first time the session cookie and the
// remembered grant let /auth answer with a code at once (the single sign-on path).
import http from 'node:http';
import Provider from 'oidc-provider';

const port = Number(process.argv[2] || 3000);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-secret',
      redirect_uris: ['http://127.0.0.1/cb'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
    },
  ],
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id }; } };
  },
  features: { devInteractions: { enabled: false } },
  // Refresh tokens for every code of this client (no offline_access/prompt=consent dance).
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  rotateRefreshToken: true,
  cookies: { keys: ['bench-cookie-key-not-a-secret'] },
});
provider.proxy = false;

const handler = provider.callback();
const auto = /^\/interaction\/([^/]+)\/auto$/;

const server = http.createServer(async (req, res) => {
  if (req.method === 'POST' && auto.test(req.url)) {
    try {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        await provider.interactionFinished(req, res, { login: { accountId: 'bench-user' } }, {
          mergeWithLastSubmission: false,
        });
        return;
      }
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope('openid');
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, {
        mergeWithLastSubmission: true,
      });
    } catch (error) {
      res.statusCode = 400;
      res.end(String(error));
    }
    return;
  }
  handler(req, res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
